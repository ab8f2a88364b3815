// The MPI communicator: ranks from mpirun / srun, collectives by MPI on host memory, each one
// under a watchdog that stops the job when it waits longer than timeout_seconds().
// The C API only: the deprecated C++ bindings are not needed (and warn under -Wextra).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "dist/backends.h"

namespace gndet::dist::detail {
namespace {

using Clock = std::chrono::steady_clock;

// One thread per process that stops the job when an armed collective passes its deadline.
// MPI_Abort from this thread needs MPI_THREAD_MULTIPLE; without it the process exits at once
// (_Exit), and mpirun / srun then stop the other ranks because one left without MPI_Finalize.
class Watchdog {
 public:
  Watchdog(int rank, double seconds, bool can_abort) : rank_(rank), seconds_(seconds), can_abort_(can_abort) {
    thread_ = std::thread([this] { loop(); });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    changed_.notify_all();
    thread_.join();
  }
  void arm(const std::string& what) {
    std::lock_guard<std::mutex> lock(mutex_);
    what_ = what;
    deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds_));
    armed_ = true;
    changed_.notify_all();
  }
  void disarm() {
    std::lock_guard<std::mutex> lock(mutex_);
    armed_ = false;
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!stop_) {
      if (!armed_) {
        changed_.wait(lock);
        continue;
      }
      if (changed_.wait_until(lock, deadline_) == std::cv_status::timeout && armed_ && Clock::now() >= deadline_) {
        std::fprintf(stderr,
                     "gndet rank %d: %s did not complete within %.0f s (GNDET_DIST_TIMEOUT): another rank has died, "
                     "hangs or stopped taking part; stopping every rank\n",
                     rank_, what_.c_str(), seconds_);
        std::fflush(stderr);
        if (can_abort_) MPI_Abort(MPI_COMM_WORLD, 3);
        std::_Exit(3);
      }
    }
  }

  int rank_;
  double seconds_;
  bool can_abort_;
  std::mutex mutex_;
  std::condition_variable changed_;
  bool armed_ = false, stop_ = false;
  std::string what_;
  Clock::time_point deadline_;
  std::thread thread_;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    int initialized = 0;
    MPI_Initialized(&initialized);
    GNDET_CHECK(!initialized, "dist: MPI is already initialised in this process");
    int provided = 0;
    GNDET_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided) == MPI_SUCCESS,
                "MPI_Init_thread failed (is this process started by mpirun or srun --mpi=pmix?)");
    MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
    // Errors come back as return codes (turned into gndet::Error) instead of aborting silently.
    MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
    MPI_Comm_rank(comm_, &info_.rank);
    MPI_Comm_size(comm_, &info_.world_size);
    MPI_Comm local;
    check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, info_.rank, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
    MPI_Comm_rank(local, &info_.local_rank);
    MPI_Comm_size(local, &info_.local_size);
    MPI_Comm_free(&local);
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int len = 0;
    MPI_Get_processor_name(name, &len);
    info_.host.assign(name, static_cast<size_t>(len));
    watchdog_ = std::make_unique<Watchdog>(info_.rank, timeout_seconds(), provided == MPI_THREAD_MULTIPLE);
  }

  ~MpiCommunicator() override {
    watchdog_.reset();
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) {
      MPI_Comm_free(&comm_);
      MPI_Finalize();
    }
  }

  std::string backend() const override { return "mpi"; }

  void all_reduce_sum(Tensor& t, bool) override {
    GNDET_CHECK(t.defined() && t.dtype() == kFloat32 && t.is_contiguous(),
                "all_reduce_sum: expected a contiguous float32 tensor");
    if (t.is_cuda()) {  // staged through the host: MPI here is not assumed to be CUDA-aware
      Tensor host = t.cpu();
      all_reduce_sum(host, false);
      t.copy_(host);
      return;
    }
    float* p = t.data<float>();
    const int64_t n = t.numel();
    Guard g(*this, "MPI_Allreduce of " + std::to_string(n) + " floats");
    for (int64_t at = 0; at < n; at += kChunk) {
      const int count = static_cast<int>(std::min<int64_t>(kChunk, n - at));
      check(MPI_Allreduce(MPI_IN_PLACE, p + at, count, MPI_FLOAT, MPI_SUM, comm_), "MPI_Allreduce");
    }
  }

  void broadcast(Tensor& t, int root) override {
    check_root(root);
    GNDET_CHECK(t.defined() && t.is_contiguous(), "broadcast: expected a contiguous tensor");
    if (t.is_cuda()) {
      Tensor host = t.cpu();
      broadcast(host, root);
      t.copy_(host);
      return;
    }
    char* p = static_cast<char*>(t.raw_data());
    const int64_t n = t.numel() * static_cast<int64_t>(t.element_size());
    Guard g(*this, "MPI_Bcast of " + std::to_string(n) + " bytes");
    for (int64_t at = 0; at < n; at += kChunk) {
      const int count = static_cast<int>(std::min<int64_t>(kChunk, n - at));
      check(MPI_Bcast(p + at, count, MPI_BYTE, root, comm_), "MPI_Bcast");
    }
  }

  std::vector<std::string> gather(const std::string& bytes, int root) override {
    check_root(root);
    GNDET_CHECK(bytes.size() < static_cast<size_t>(INT_MAX), "gather: ", bytes.size(), " bytes is more than MPI_Gatherv can take");
    Guard g(*this, "MPI_Gatherv of " + std::to_string(bytes.size()) + " bytes");
    const int mine = static_cast<int>(bytes.size());
    std::vector<int> sizes(static_cast<size_t>(world_size())), offsets(sizes.size());
    check(MPI_Gather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, root, comm_), "MPI_Gather");
    int64_t total = 0;
    for (size_t r = 0; r < sizes.size(); ++r) {
      offsets[r] = static_cast<int>(total);
      total += sizes[r];
    }
    GNDET_CHECK(rank() != root || total < INT_MAX, "gather: ", total, " bytes in all is more than MPI_Gatherv can take");
    std::string all(rank() == root ? static_cast<size_t>(total) : 0, '\0');
    check(MPI_Gatherv(bytes.data(), mine, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, root, comm_),
          "MPI_Gatherv");
    std::vector<std::string> out;
    if (rank() == root) {
      for (size_t r = 0; r < sizes.size(); ++r) out.push_back(all.substr(static_cast<size_t>(offsets[r]), static_cast<size_t>(sizes[r])));
    }
    return out;
  }

  std::string broadcast_string(const std::string& bytes, int root) override {
    check_root(root);
    Guard g(*this, "MPI_Bcast of a string");
    long long n = static_cast<long long>(bytes.size());
    check(MPI_Bcast(&n, 1, MPI_LONG_LONG, root, comm_), "MPI_Bcast");
    GNDET_CHECK(n < INT_MAX, "broadcast_string: ", n, " bytes is too long");
    std::string out = rank() == root ? bytes : std::string(static_cast<size_t>(n), '\0');
    check(MPI_Bcast(out.data(), static_cast<int>(n), MPI_BYTE, root, comm_), "MPI_Bcast");
    return out;
  }

  void barrier() override {
    Guard g(*this, "MPI_Barrier");
    check(MPI_Barrier(comm_), "MPI_Barrier");
  }

  [[noreturn]] void abort(int code, const std::string& why) override {
    std::fprintf(stderr, "gndet rank %d of %d: %s\ngndet rank %d: stopping every rank of the job\n", rank(), world_size(),
                 why.c_str(), rank());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  // Large buffers go in pieces: MPI counts are ints.
  static constexpr int64_t kChunk = int64_t{1} << 30;

  struct Guard {
    Guard(MpiCommunicator& c, const std::string& what) : c_(c) { c_.watchdog_->arm(what); }
    ~Guard() { c_.watchdog_->disarm(); }
    MpiCommunicator& c_;
  };

  void check(int rc, const char* what) const {
    if (rc == MPI_SUCCESS) return;
    char msg[MPI_MAX_ERROR_STRING] = {};
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    GNDET_FAIL(what, " failed on rank ", info_.rank, " of ", info_.world_size, ": ", std::string(msg, static_cast<size_t>(len)));
  }
  void check_root(int root) const {
    GNDET_CHECK(root >= 0 && root < world_size(), "dist: root rank ", root, " out of range for ", world_size(), " ranks");
  }

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace

std::shared_ptr<Communicator> make_mpi_communicator() { return std::make_shared<MpiCommunicator>(); }

}  // namespace gndet::dist::detail
