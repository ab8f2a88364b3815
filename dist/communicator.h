// Data parallelism: who this process is among the ranks of a run, and the collectives that keep
// the ranks in step. Three implementations behind one interface:
//
//   single   one process (--launcher none): every collective is the identity; needs no MPI
//   mpi      ranks started by mpirun / srun --mpi=pmix (--launcher mpi); MPI collectives, on
//            host memory (CUDA tensors are staged through the host)
//   nccl     the mpi communicator plus one NCCL communicator per GPU: tensor collectives run on
//            the GPU on a side stream; bytes, barrier and abort still go through MPI
//
// Nothing here is a transport of its own: MPI starts the ranks and carries ids and CPU
// collectives, NCCL carries GPU collectives.
//
// Bounded waiting: every MPI collective runs under a watchdog. When one does not complete within
// timeout_seconds() (a rank died, hangs, or took another path) the watchdog prints which
// collective on which rank timed out and stops the whole job (MPI_Abort), so no rank waits forever.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace gndet::dist {

struct RankInfo {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;  // rank among the processes on this machine (which GPU to take)
  int local_size = 1;
  std::string host;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"
  const RankInfo& info() const { return info_; }
  int rank() const { return info_.rank; }
  int world_size() const { return info_.world_size; }
  bool is_main() const { return info_.rank == 0; }

  // t (float32, contiguous) becomes the element-wise sum over ranks, in place. With queued =
  // true a GPU implementation may return before the sum is done (the work is ordered on a side
  // stream after what the current stream queued so far); wait_queued() then makes the current
  // stream wait for it. CPU implementations always finish before returning.
  virtual void all_reduce_sum(Tensor& t, bool queued = false) = 0;
  virtual void wait_queued() {}
  // The bytes of t (contiguous, any dtype) on every rank become root's.
  virtual void broadcast(Tensor& t, int root) = 0;
  // Every rank's string on root, in rank order; other ranks get an empty vector.
  virtual std::vector<std::string> gather(const std::string& bytes, int root) = 0;
  virtual std::string broadcast_string(const std::string& bytes, int root) = 0;
  virtual void barrier() = 0;
  // Stops every rank of the job with exit code `code` after printing `why` (for a rank that
  // failed: the others would otherwise wait in their next collective).
  [[noreturn]] virtual void abort(int code, const std::string& why) = 0;

 protected:
  RankInfo info_;
};

// "none" -> single process; "mpi" -> MPI (throws a clear gndet::Error in a build without MPI).
// The MPI communicator initialises MPI and finalises it when the last communicator using it is
// destroyed.
std::shared_ptr<Communicator> init_communicator(const std::string& launcher);
std::shared_ptr<Communicator> single_process();

// A communicator for CUDA tensors on `cuda_device` built over `mpi` (the NCCL unique id goes from
// rank 0 to the others through it). Throws when gndet was built without NCCL.
std::shared_ptr<Communicator> nccl_communicator(std::shared_ptr<Communicator> mpi, int cuda_device);

bool mpi_built();   // gndet was built with MPI (-Dmpi)
bool nccl_built();  // gndet was built with NCCL (CUDA build, nccl.h and libnccl found)

// Seconds a collective may wait before the watchdog stops the job: GNDET_DIST_TIMEOUT when set
// (a positive number), else 1800 (NCCL's default watchdog timeout in PyTorch).
double timeout_seconds();

}  // namespace gndet::dist
