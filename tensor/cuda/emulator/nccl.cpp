// NCCL on the emulated device, carried over MPI between emulated-device ranks (one process per
// rank, as gndet's --launcher mpi runs NCCL). Each collective is stream work: at its turn the
// stream's executor copies the device buffer to the host, runs the MPI collective on a duplicate of
// MPI_COMM_WORLD, and copies the result back, so the caller's ordering (the side stream waiting for
// the gradient buckets, the current stream waiting for the side stream) is exercised as on GPUs.
//
// Collectives of one communicator run in the order the host issued them, whatever streams they are
// on: every rank issues them in the same order, and MPI needs them in the same order. A rank that
// dies leaves the others blocked in MPI, as NCCL would leave them in a kernel: gndet's watchdog
// (ncclCommGetAsyncError + a deadline, dist/nccl_communicator.cpp) then aborts the job.
//
// Without MPI (a build without it, or a process mpirun did not start) only communicators of one
// rank work: their collectives are copies.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "tensor/cuda/emulator/internal.h"

#include <nccl.h>

#if GNDET_EMU_WITH_MPI
#define OMPI_SKIP_MPICXX 1  // the C API only (the C++ bindings warn and are deprecated)
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>
#endif

struct ncclComm {
  int nranks = 1, rank = 0;
#if GNDET_EMU_WITH_MPI
  MPI_Comm mpi = MPI_COMM_NULL;
#endif
  std::mutex mu;
  std::condition_variable cv;
  uint64_t issued = 0, done = 0;  // collectives in host issue order
  std::atomic<int> async_error{ncclSuccess};
  std::atomic<bool> aborted{false};
  std::string last_error;
};

namespace gndet::cuda::emu {
namespace {

constexpr char kIdMagic[] = "gndet emulated NCCL";
thread_local std::string tl_init_error;

size_t size_of(ncclDataType_t t) {
  switch (t) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclFloat16:
    case ncclBfloat16: return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
  }
  return 0;
}

ncclResult_t fail(ncclComm_t comm, ncclResult_t r, const std::string& why) {
  std::fprintf(stderr, "gndet emulated NCCL: %s\n", why.c_str());
  if (comm != nullptr) {
    std::lock_guard<std::mutex> lock(comm->mu);
    comm->last_error = why;
  } else {
    tl_init_error = why;
  }
  return r;
}

#if GNDET_EMU_WITH_MPI
MPI_Datatype mpi_type(ncclDataType_t t) {
  switch (t) {
    case ncclInt8: return MPI_INT8_T;
    case ncclUint8: return MPI_UINT8_T;
    case ncclInt32: return MPI_INT32_T;
    case ncclUint32: return MPI_UINT32_T;
    case ncclInt64: return MPI_INT64_T;
    case ncclUint64: return MPI_UINT64_T;
    case ncclFloat32: return MPI_FLOAT;
    case ncclFloat64: return MPI_DOUBLE;
    default: return MPI_DATATYPE_NULL;  // 16-bit floats: MPI has no arithmetic for them
  }
}

MPI_Op mpi_op(ncclRedOp_t op) {
  switch (op) {
    case ncclSum:
    case ncclAvg: return MPI_SUM;
    case ncclProd: return MPI_PROD;
    case ncclMax: return MPI_MAX;
    case ncclMin: return MPI_MIN;
  }
  return MPI_OP_NULL;
}
#endif

// Queues one collective: `body` runs on the stream's executor, after the communicator's earlier
// collectives, with the device buffers staged through `host`.
ncclResult_t queue(ncclComm_t comm, cudaStream_t stream, const char* what, std::function<void()> body) {
  uint64_t ticket;
  {
    std::lock_guard<std::mutex> lock(comm->mu);
    ticket = comm->issued++;
  }
  const cudaError_t e = enqueue_host_work(stream, what, [comm, ticket, body = std::move(body)] {
    {
      std::unique_lock<std::mutex> lock(comm->mu);
      comm->cv.wait(lock, [&] { return comm->done == ticket || comm->aborted.load(); });
    }
    if (!comm->aborted.load()) body();
    {
      std::lock_guard<std::mutex> lock(comm->mu);
      ++comm->done;
    }
    comm->cv.notify_all();
  });
  if (e != cudaSuccess) {
    return fail(comm, ncclUnhandledCudaError, std::string(what) + ": the stream refused the work: " + cudaGetErrorString(e));
  }
  return ncclSuccess;
}

}  // namespace
}  // namespace gndet::cuda::emu

using namespace gndet::cuda::emu;

extern "C" {

const char* ncclGetErrorString(ncclResult_t r) {
  switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
  }
  return "unknown result code";
}

const char* ncclGetLastError(ncclComm_t comm) {
  if (comm == nullptr) return tl_init_error.c_str();
  std::lock_guard<std::mutex> lock(comm->mu);
  thread_local std::string copy;
  copy = comm->last_error;
  return copy.c_str();
}

ncclResult_t ncclGetUniqueId(ncclUniqueId* id) {
  if (id == nullptr) return fail(nullptr, ncclInvalidArgument, "ncclGetUniqueId: null id");
  std::memset(id->internal, 0, sizeof(id->internal));
  std::memcpy(id->internal, kIdMagic, sizeof(kIdMagic));
  std::random_device rd;
  const uint64_t nonce = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ static_cast<uint64_t>(getpid());
  std::memcpy(id->internal + 64, &nonce, sizeof(nonce));
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t* out, int nranks, ncclUniqueId id, int rank) {
  if (out == nullptr || nranks < 1 || rank < 0 || rank >= nranks) {
    return fail(nullptr, ncclInvalidArgument, "ncclCommInitRank: rank " + std::to_string(rank) + " of " +
                                                  std::to_string(nranks) + " is not a rank of the communicator");
  }
  if (std::memcmp(id.internal, kIdMagic, sizeof(kIdMagic)) != 0) {
    return fail(nullptr, ncclInvalidArgument, "ncclCommInitRank: the unique id was not made by ncclGetUniqueId");
  }
  auto comm = std::make_unique<ncclComm>();
  comm->nranks = nranks;
  comm->rank = rank;
  if (nranks > 1) {
#if GNDET_EMU_WITH_MPI
    int initialized = 0, world = 0, me = 0;
    MPI_Initialized(&initialized);
    if (!initialized) {
      return fail(nullptr, ncclInvalidUsage, "ncclCommInitRank: " + std::to_string(nranks) +
                                                 " ranks, but MPI is not initialised: the emulated NCCL carries its "
                                                 "collectives over MPI (start the ranks with mpirun)");
    }
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    if (world != nranks || me != rank) {
      return fail(nullptr, ncclInvalidUsage, "ncclCommInitRank: rank " + std::to_string(rank) + " of " +
                                                 std::to_string(nranks) + ", but this is MPI rank " + std::to_string(me) +
                                                 " of " + std::to_string(world) +
                                                 ": the emulated NCCL maps its ranks onto MPI_COMM_WORLD's");
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &comm->mpi);
    // Every rank must hold the id rank 0 made: compare them.
    std::vector<char> all(static_cast<size_t>(nranks) * sizeof(id.internal));
    MPI_Allgather(id.internal, sizeof(id.internal), MPI_BYTE, all.data(), sizeof(id.internal), MPI_BYTE, comm->mpi);
    for (int r = 1; r < nranks; ++r) {
      if (std::memcmp(all.data(), all.data() + r * sizeof(id.internal), sizeof(id.internal)) != 0) {
        MPI_Comm_free(&comm->mpi);
        return fail(nullptr, ncclInvalidArgument, "ncclCommInitRank: rank " + std::to_string(r) +
                                                      " was given another unique id than rank 0");
      }
    }
#else
    return fail(nullptr, ncclInvalidUsage, "ncclCommInitRank: " + std::to_string(nranks) +
                                               " ranks, but gndet was built without MPI, which the emulated NCCL "
                                               "needs between processes");
#endif
  }
  *out = comm.release();
  return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  {
    std::unique_lock<std::mutex> lock(comm->mu);
    comm->cv.wait(lock, [&] { return comm->done == comm->issued || comm->aborted.load(); });
  }
#if GNDET_EMU_WITH_MPI
  int finalized = 1;
  MPI_Finalized(&finalized);
  if (comm->mpi != MPI_COMM_NULL && !finalized && !comm->aborted.load()) MPI_Comm_free(&comm->mpi);
#endif
  if (!comm->aborted.load()) delete comm;  // an aborted one may still be used by a blocked collective
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (comm == nullptr) return ncclSuccess;
  comm->aborted.store(true);
  comm->cv.notify_all();
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* async_error) {
  if (comm == nullptr || async_error == nullptr) return ncclInvalidArgument;
  *async_error = static_cast<ncclResult_t>(comm->async_error.load());
  return ncclSuccess;
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int* count) {
  if (comm == nullptr || count == nullptr) return ncclInvalidArgument;
  *count = comm->nranks;
  return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank) {
  if (comm == nullptr || rank == nullptr) return ncclInvalidArgument;
  *rank = comm->rank;
  return ncclSuccess;
}

ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  if (comm == nullptr) return fail(nullptr, ncclInvalidArgument, "ncclAllReduce: null communicator");
  const size_t es = size_of(datatype);
  if (es == 0 || op < ncclSum || op > ncclAvg) return fail(comm, ncclInvalidArgument, "ncclAllReduce: bad type or operation");
  if (comm->aborted.load()) return fail(comm, ncclInvalidUsage, "ncclAllReduce on an aborted communicator");
#if GNDET_EMU_WITH_MPI
  if (comm->nranks > 1 && mpi_type(datatype) == MPI_DATATYPE_NULL) {
    return fail(comm, ncclInvalidArgument, "ncclAllReduce: the emulated NCCL reduces no 16-bit floats");
  }
#endif
  if (count == 0) return ncclSuccess;
  return queue(comm, stream, "ncclAllReduce", [=] {
    const size_t bytes = count * es;
    check_device_range(sendbuff, bytes, "ncclAllReduce send buffer");
    check_device_range(recvbuff, bytes, "ncclAllReduce receive buffer");
    std::vector<char> host(static_cast<const char*>(sendbuff), static_cast<const char*>(sendbuff) + bytes);
#if GNDET_EMU_WITH_MPI
    if (comm->nranks > 1) {
      if (MPI_Allreduce(MPI_IN_PLACE, host.data(), static_cast<int>(count), mpi_type(datatype), mpi_op(op), comm->mpi) !=
          MPI_SUCCESS) {
        comm->async_error.store(ncclSystemError);
        return;
      }
      if (op == ncclAvg && (datatype == ncclFloat32 || datatype == ncclFloat64)) {
        for (size_t i = 0; i < count; ++i) {
          if (datatype == ncclFloat32) {
            reinterpret_cast<float*>(host.data())[i] /= static_cast<float>(comm->nranks);
          } else {
            reinterpret_cast<double*>(host.data())[i] /= comm->nranks;
          }
        }
      }
    }
#endif
    std::memcpy(recvbuff, host.data(), bytes);
  });
}

ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count, ncclDataType_t datatype, int root,
                           ncclComm_t comm, cudaStream_t stream) {
  if (comm == nullptr) return fail(nullptr, ncclInvalidArgument, "ncclBroadcast: null communicator");
  const size_t es = size_of(datatype);
  if (es == 0 || root < 0 || root >= comm->nranks) return fail(comm, ncclInvalidArgument, "ncclBroadcast: bad type or root");
  if (comm->aborted.load()) return fail(comm, ncclInvalidUsage, "ncclBroadcast on an aborted communicator");
  if (count == 0) return ncclSuccess;
  return queue(comm, stream, "ncclBroadcast", [=] {
    const size_t bytes = count * es;
    check_device_range(recvbuff, bytes, "ncclBroadcast receive buffer");
    std::vector<char> host(bytes);
    if (comm->rank == root) {
      check_device_range(sendbuff, bytes, "ncclBroadcast send buffer");
      std::memcpy(host.data(), sendbuff, bytes);
    }
#if GNDET_EMU_WITH_MPI
    if (comm->nranks > 1 && MPI_Bcast(host.data(), static_cast<int>(bytes), MPI_BYTE, root, comm->mpi) != MPI_SUCCESS) {
      comm->async_error.store(ncclSystemError);
      return;
    }
#endif
    std::memcpy(recvbuff, host.data(), bytes);
  });
}

}  // extern "C"
