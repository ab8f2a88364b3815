// Private to the emulated device (tensor/cuda/emulator/*.cpp): its settings, device memory,
// streams and the state of the emulated thread running on a host thread. None of these files is
// compiled with the access instrumentation of the kernel sources.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tensor/cuda/emulator/emulator.h"

namespace gndet::cuda::emu {

// ---- settings, read once from the environment (docs/emulator.md lists them) ----

enum class Schedule { WarpGreedy, ReverseGreedy, Random };

struct Settings {
  int devices = 1;                   // GNDET_EMU_DEVICES=0: a machine without a GPU (the runtime's answer)
  int sms = 4;                       // multiprocessors the device reports (GNDET_EMU_SMS)
  int resident_per_sm = 8;           // blocks resident at once per SM: sms * this worker threads
  int running = 2;                   // resident blocks that compute at once (GNDET_EMU_THREADS; cores)
  Schedule schedule = Schedule::WarpGreedy;  // GNDET_EMU_SCHEDULE=greedy|reverse|random
  uint64_t seed = 1;                 // GNDET_EMU_SEED, for the random schedule
  size_t memory_bytes = size_t{16} << 30;  // GNDET_EMU_MEMORY_GB
  bool memcheck = true;              // GNDET_EMU_MEMCHECK=0 turns access checks off
  bool racecheck = true;             // GNDET_EMU_RACECHECK=0
  bool protect_keys = true;          // GNDET_EMU_PKEYS=0: no memory protection keys
  double hang_seconds = 120;         // a block that makes no progress this long is reported
};
const Settings& settings();
int workers();  // sms * resident_per_sm
// Whether the kernel sources were compiled with the access hooks (not under AddressSanitizer).
bool access_hooks_built();

// ---- faults ----

// The device's sticky error: once a kernel faults, every later call fails with it, as on a GPU.
cudaError_t sticky_error();
const std::string& sticky_report();
void set_sticky(cudaError_t error, const std::string& report);

// The error bookkeeping of every API call (streams.cpp): a failure becomes the calling thread's
// last error; once a sticky error is set, every call returns it.
cudaError_t api_result(cudaError_t e);
cudaError_t take_last_error(bool clear);

// Names an error code with the detail of the failure that produced it (sticky report, or the last
// invalid launch on this thread), for cudaGetErrorString.
void set_launch_detail(cudaError_t error, const std::string& detail);
std::string detail_for(cudaError_t error);

// ---- device memory (device_memory.cpp) ----

class DeviceMemory {
 public:
  static DeviceMemory& get();
  char* base() const { return base_; }
  size_t size() const { return size_; }
  bool contains(uintptr_t a) const { return a - reinterpret_cast<uintptr_t>(base_) < size_; }

  void* allocate(size_t bytes);  // nullptr when the device is full
  bool release(void* ptr);       // false: not an allocation's start
  size_t used() const;
  // The allocation (cudaMalloc) holding `a`, as (start, bytes); {0, 0} when none.
  std::pair<uintptr_t, size_t> allocation_of(uintptr_t a) const;

  // Shadow state, one byte per 8-byte granule: 8 addressable, 1..7 the first k bytes, else not.
  bool addressable(uintptr_t a, size_t n) const {
    const uint8_t* sh = shadow_ + ((a - reinterpret_cast<uintptr_t>(base_)) >> 3);
    if ((a & 7) + n <= 8) {
      const uint8_t s = *sh;
      return s == 8 || (s < 8 && (a & 7) + n <= s);
    }
    return addressable_slow(a, n);
  }
  void mark(uintptr_t a, size_t n, bool live, uint8_t reason);
  // The caching allocator's segments and blocks (see note_block_live in device_memory.cpp).
  void note_segment(uintptr_t a, size_t n);
  // A block becomes live (or dead): applied now and true, unless `queue_if_pending` and changes of
  // its segment are queued on its stream: then counted as queued too, and false.
  bool block_event(uintptr_t a, size_t n, bool live, bool queue_if_pending);
  void queue_block_event(uintptr_t a);
  void run_queued_block_event(uintptr_t a, size_t n, bool live);
  // Why [a, a + n) is not addressable, in words: "16 bytes past the end of a 4096-byte tensor
  // block at 0x...", "in memory freed by cudaFree", ...
  std::string explain(uintptr_t a, size_t n) const;

  int protection_key() const { return pkey_; }
  void allow_this_thread(bool allow) const;

  static constexpr uint8_t kUnmapped = 0x00;
  static constexpr uint8_t kCached = 0x81;  // a caching-allocator segment, not in a live block
  static constexpr uint8_t kFreed = 0x82;   // freed by cudaFree

 private:
  DeviceMemory();
  bool addressable_slow(uintptr_t a, size_t n) const;

  char* base_ = nullptr;
  size_t size_ = 0;
  uint8_t* shadow_ = nullptr;
  int pkey_ = -1;
  mutable std::mutex mu_;
  std::map<size_t, size_t> free_pages_;         // offset -> bytes, page-aligned ranges
  std::map<uintptr_t, size_t> allocations_;     // cudaMalloc start -> bytes asked for
  std::map<uintptr_t, size_t> mapped_;          // cudaMalloc start -> bytes mapped (pages)
  std::map<uintptr_t, size_t> live_blocks_;     // caching-allocator block -> requested bytes
  struct Segment {
    size_t bytes = 0;
    int queued = 0;  // block changes queued on the segment's stream, not yet applied
  };
  Segment* segment_of(uintptr_t a);
  void apply_block_event(uintptr_t a, size_t n, bool live);
  std::map<uintptr_t, Segment> segments_;  // caching-allocator segments
  size_t used_ = 0;
};

// Host memory from cudaHostAlloc: readable by kernels and copied asynchronously.
bool is_pinned(const void* ptr);
void* pinned_allocate(size_t bytes);
bool pinned_release(void* ptr);

// ---- streams (streams.cpp) ----

class StreamState;
using StreamPtr = std::shared_ptr<StreamState>;

// The stream a handle names on the current device; nullptr when the handle is unknown.
StreamPtr stream_for_handle(cudaStream_t handle);
// Queues work (run on the stream's executor thread, in order). Work that throws DeviceFault
// sets the sticky error; later work of every stream is skipped once it is set.
uint64_t enqueue(const StreamPtr& s, std::string what, std::function<void()> work);
void wait_until_done(const StreamPtr& s, uint64_t seq);
bool is_done(const StreamPtr& s, uint64_t seq);
uint64_t last_issued(const StreamPtr& s);
void synchronize_all();
// Marks the calling thread as a stream executor (may touch device memory, runs no kernel code).
bool on_executor_thread();

// ---- kernels (launch.cpp) ----

// Runs a whole grid (called by a stream's executor); a fault becomes a thrown DeviceFault.
struct Grid;
void run_grid(const std::shared_ptr<Grid>& grid);

// The emulated thread running on this host thread, or nullptr (host code, executors).
struct EmuThread;
EmuThread* current_thread();

}  // namespace gndet::cuda::emu
