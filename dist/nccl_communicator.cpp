// The NCCL communicator: tensor collectives on the GPU, on a side stream, over one NCCL
// communicator per device (rank = MPI rank, one GPU per rank). The unique id goes from rank 0 to
// the others through the MPI communicator, which also carries bytes, barriers and aborts.
//
// Ordering: a collective first makes the side stream wait for what the current stream queued
// (the packed bucket), runs there, and with queued = false makes the current stream wait for it
// at once; GradientAverager queues every bucket and waits once, so the side stream reduces
// bucket k while the current stream packs bucket k + 1. Compiled in CUDA builds with NCCL only.
#include <cstdlib>
#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "dist/backends.h"
#include "tensor/cuda_api.h"

namespace gndet::dist::detail {
namespace {

void check_nccl(ncclResult_t r, const char* what, int rank) {
  GNDET_CHECK(r == ncclSuccess, what, " failed on rank ", rank, ": ", ncclGetErrorString(r));
}

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(std::shared_ptr<Communicator> base, int device) : base_(std::move(base)), device_(device) {
    info_ = base_->info();
    ncclUniqueId id;
    std::string bytes;
    if (base_->is_main()) {
      check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId", rank());
      bytes.assign(reinterpret_cast<const char*>(&id), sizeof(id));
    }
    bytes = base_->broadcast_string(bytes, 0);
    GNDET_CHECK(bytes.size() == sizeof(id), "NCCL: the unique id from rank 0 has ", bytes.size(), " bytes");
    std::memcpy(&id, bytes.data(), sizeof(id));
    GNDET_CHECK(cudaSetDevice(device_) == cudaSuccess, "NCCL: cannot select cuda:", device_, " on rank ", rank());
    check_nccl(ncclCommInitRank(&comm_, world_size(), id, rank()), "ncclCommInitRank", rank());
    side_ = cuda::stream_from_pool(device_);
  }
  ~NcclCommunicator() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
  }

  std::string backend() const override { return "nccl"; }

  void all_reduce_sum(Tensor& t, bool queued) override {
    GNDET_CHECK(t.defined() && t.dtype() == kFloat32 && t.is_contiguous(),
                "all_reduce_sum: expected a contiguous float32 tensor");
    if (!t.is_cuda()) {
      base_->all_reduce_sum(t, false);
      return;
    }
    check_device(t);
    cuda::wait_stream(side_, cuda::current_stream(device_));
    float* p = t.data<float>();
    check_nccl(ncclAllReduce(p, p, static_cast<size_t>(t.numel()), ncclFloat, ncclSum, comm_,
                             static_cast<cudaStream_t>(side_.handle)),
               "ncclAllReduce", rank());
    cuda::record_stream(t, side_);
    pending_ = true;
    if (!queued) wait_queued();
  }

  // The current stream waits for the queued collectives, and so does the host, under a deadline:
  // a rank that died or hangs would otherwise leave this one blocked at its next synchronisation
  // for ever. While waiting, NCCL's own asynchronous errors are polled (ncclCommGetAsyncError).
  // Past timeout_seconds() (GNDET_DIST_TIMEOUT) the communicator is aborted and the job stopped
  // with a message, as the MPI watchdog does. The host waits here once per step, after every
  // bucket was queued: the reductions still overlap backward on the side stream.
  void wait_queued() override {
    if (!pending_) return;
    cuda::wait_stream(cuda::current_stream(device_), side_);
    pending_ = false;
    cudaEvent_t done = nullptr;
    GNDET_CHECK(cudaSetDevice(device_) == cudaSuccess, "NCCL: cannot select cuda:", device_);
    GNDET_CHECK(cudaEventCreateWithFlags(&done, cudaEventDisableTiming) == cudaSuccess, "NCCL: cudaEventCreate failed");
    GNDET_CHECK(cudaEventRecord(done, static_cast<cudaStream_t>(side_.handle)) == cudaSuccess,
                "NCCL: cudaEventRecord failed");
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds());
    for (;;) {
      const cudaError_t q = cudaEventQuery(done);
      if (q == cudaSuccess) break;
      GNDET_CHECK(q == cudaErrorNotReady, "NCCL: waiting for the all-reduce: ", cudaGetErrorString(q));
      ncclResult_t async = ncclSuccess;
      ncclCommGetAsyncError(comm_, &async);
      if (async != ncclSuccess || std::chrono::steady_clock::now() > deadline) {
        cudaEventDestroy(done);
        abort(4, async != ncclSuccess
                     ? std::string("NCCL reported an asynchronous error: ") + ncclGetErrorString(async)
                     : "an NCCL all-reduce did not complete within " + std::to_string(timeout_seconds()) +
                           " s (GNDET_DIST_TIMEOUT): another rank has died, hangs or took another path");
      }
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    cudaEventDestroy(done);
  }

  void broadcast(Tensor& t, int root) override {
    GNDET_CHECK(t.defined() && t.is_contiguous(), "broadcast: expected a contiguous tensor");
    if (!t.is_cuda()) {
      base_->broadcast(t, root);
      return;
    }
    check_device(t);
    const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
    check_nccl(ncclBroadcast(t.raw_data(), t.raw_data(), bytes, ncclUint8, root, comm_,
                             static_cast<cudaStream_t>(cuda::current_stream(device_).handle)),
               "ncclBroadcast", rank());
  }

  std::vector<std::string> gather(const std::string& bytes, int root) override { return base_->gather(bytes, root); }
  std::string broadcast_string(const std::string& bytes, int root) override {
    return base_->broadcast_string(bytes, root);
  }
  void barrier() override {
    wait_queued();
    base_->barrier();
  }
  [[noreturn]] void abort(int code, const std::string& why) override {
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
    base_->abort(code, why);
    std::abort();  // not reached: base_->abort ends the job (MPI_Abort); a virtual call hides that
  }

 private:
  void check_device(const Tensor& t) const {
    GNDET_CHECK(t.device().index == device_, "NCCL communicator of cuda:", device_, " given a tensor on ",
                t.device().str());
  }

  std::shared_ptr<Communicator> base_;
  int device_;
  ncclComm_t comm_ = nullptr;
  cuda::Stream side_;
  bool pending_ = false;
};

}  // namespace

std::shared_ptr<Communicator> make_nccl_communicator(std::shared_ptr<Communicator> mpi, int cuda_device) {
  return std::make_shared<NcclCommunicator>(std::move(mpi), cuda_device);
}

}  // namespace gndet::dist::detail
