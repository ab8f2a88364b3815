// Private to launch.cpp (the grid and block scheduler) and access_checks.cpp (memcheck and
// racecheck): the state of a grid, of a block running on a worker, and of each emulated thread.
#pragma once

#include <boost/context/detail/fcontext.hpp>

#include <random>

#include "tensor/cuda/emulator/internal.h"

namespace gndet::cuda::emu {

namespace ctx = boost::context::detail;

struct Grid {
  LaunchSite site;
  LaunchConfig config;
  std::function<void()> thread_main;
  uint64_t launch_id = 0;
  uint64_t blocks = 0;
  std::atomic<uint64_t> next_block{0};
  std::mutex mu;
  std::condition_variable cv;
  uint64_t finished = 0;
  std::atomic<bool> faulted{false};
  cudaError_t error = cudaSuccess;
  std::string report;  // the first fault of the grid

  Grid(const LaunchSite& s, const LaunchConfig& c, std::function<void()> f)
      : site(s), config(c), thread_main(std::move(f)) {}
  std::string name() const;  // "kernel K (file:line), grid (x,y,z) x block (x,y,z)"
};

// Racecheck's memory of one 4-byte word of shared memory since the last block barrier.
struct RaceCell {
  uint64_t epoch = 0;  // (block serial << 24) + barrier count: older epochs are forgotten
  int32_t writer = -1, reader = -1;  // linear thread ids; reader kManyReaders: several
  int32_t reader_warp = -1;          // the readers' warp, kManyReaders when they span warps
  uint32_t writer_warp_epoch = 0, reader_warp_epoch = 0;
  const void* writer_pc = nullptr;
  const void* reader_pc = nullptr;
  static constexpr int32_t kManyReaders = -2;
};

// A range of shared memory on a worker: its static __shared__ variables (the worker thread's TLS
// block of a module holding kernels) or the dynamic buffer.
struct SharedRange {
  uintptr_t lo = 0, hi = 0;
  bool dynamic = false;
  std::vector<RaceCell> cells;
};

struct Block;

struct EmuThread {
  enum class State : uint8_t { Runnable, AtBarrier, AtWarp, Done, Faulted };

  Block* block = nullptr;
  uint3 tid{0, 0, 0};
  int linear = 0, warp = 0, lane = 0;
  uintptr_t stack_lo = 0;
  size_t stack_size = 0;
  bool checking = false;  // inside the kernel's own code: its accesses are checked

  State state = State::Runnable;
  ctx::fcontext_t context = nullptr;  // where the thread continues
  ctx::fcontext_t scheduler = nullptr;

  // The sync point it waits at.
  const char* file = nullptr;
  int line = 0;
  WarpOp op = WarpOp::Shfl;
  bool syncwarp = false;
  unsigned mask = 0;
  int arg = 0, width = 32;
  uint64_t value = 0, result = 0;

  // A fault found while it ran, for the scheduler to report.
  cudaError_t fault_error = cudaSuccess;
  std::string fault;
  const void* fault_pc = nullptr;
};

struct Block {
  Grid* grid = nullptr;
  uint3 idx{0, 0, 0};
  dim3 dim;
  int threads = 0, warps = 0;
  int live = 0, exited = 0, at_barrier = 0;
  const char* barrier_file = nullptr;
  int barrier_line = 0;
  uint64_t serial = 0;  // unique per block run
  uint32_t barrier_count = 0;
  std::vector<uint32_t> warp_epoch;  // bumped by every __syncwarp of the warp
  std::vector<uint32_t> runnable;    // per warp, a bit per runnable lane
  char* dynamic_shared = nullptr;
  size_t dynamic_bytes = 0;
  bool faulted = false;
  bool aborted = false;  // another block of the grid faulted
  double spin_since = -1;      // host seconds when its threads started waiting in __nanosleep
  uint64_t spin_progress = 0;  // barriers and exits then: any change is progress

  uint64_t race_epoch() const { return (serial << 24) + barrier_count; }
};

// A host thread that runs blocks, one at a time, each thread of a block as a fiber.
struct Worker {
  int index = 0;
  std::vector<EmuThread> threads;
  char* stacks = nullptr;
  size_t stack_bytes = 0;  // per fiber
  std::vector<SharedRange> shared;  // static ranges (TLS blocks), then the dynamic one last
  std::vector<char> dynamic_buffer;
  std::mt19937_64 rng;
};

extern thread_local EmuThread* tl_current __attribute__((tls_model("initial-exec")));
extern thread_local Worker* tl_worker __attribute__((tls_model("initial-exec")));

// ---- shared by launch.cpp (the scheduler) and device_builtins.cpp (what kernels call) ----

// Suspends checking while the emulator's own code runs inside a kernel's thread.
struct Pause {
  EmuThread* t;
  bool was;
  Pause() : t(tl_current), was(t != nullptr && t->checking) {
    if (t != nullptr) t->checking = false;
  }
  ~Pause() {
    if (t != nullptr) t->checking = was;
  }
};

// The calling emulated thread; aborts (a bug of the emulator's user) outside a kernel.
EmuThread* require_thread(const char* what);
// Marks a thread runnable or waiting (its block's per-warp runnable masks follow).
void set_state(EmuThread& t, EmuThread::State s);
// Back to the scheduler; returns when the scheduler resumes this thread.
void yield(EmuThread& t);
// At most settings().running resident blocks compute at once (a spinning block hands its turn on).
void acquire_token();
void release_token();
double seconds_now();
std::string dims(dim3 d);  // "(x,y,z)"
const char* op_name(WarpOp op, bool syncwarp);  // "__shfl_xor_sync", "__syncwarp", ...

// Stops the calling emulated thread with a fault (never returns): the scheduler reports it.
[[noreturn]] void raise_fault(EmuThread* t, cudaError_t error, std::string what, const void* pc);

// Where a code address is, for reports: "ops/cuda/index.cu:57 (gather_cu<float, long>)".
std::string source_location(const void* pc);

std::string thread_name(const EmuThread& t);  // "thread (17,0,0) of block (3,0,0)"

// The calling thread's TLS blocks of every loaded module: where its static __shared__ live.
std::vector<std::pair<uintptr_t, uintptr_t>> tls_blocks();

}  // namespace gndet::cuda::emu
