// The CUDA caching allocator: device memory is taken from the driver in segments and handed out
// as blocks that go back to a cache when their tensor dies, so a training loop whose shapes vary
// every iteration (detection) stops calling cudaMalloc / cudaFree once it has warmed up.
//
//  - Sizes are rounded up to 512 B. Requests up to 1 MiB ("small") are carved out of 2 MiB
//    segments; larger ones out of 20 MiB segments when under 10 MiB, else out of a segment of
//    their own size rounded up to 2 MiB. A free block is reused best-fit (the smallest that fits)
//    and split when the rest is worth keeping (>= 512 B small, > 1 MiB large); freed neighbours
//    within a segment merge again.
//  - Stream-aware: a block belongs to the stream that was current when it was allocated and is
//    reused only by allocations on that stream, where stream order makes reuse safe without any
//    synchronisation. A block also used on other streams (record_stream) is reused only after
//    events recorded on those streams at free time have completed.
//  - cudaMalloc failing: cached blocks that nobody uses are freed and the call retried once; a
//    second failure throws gndet::Error with the size asked for and the statistics.
//  - Never destroyed: tensors freed during static destruction still find it, and the driver
//    reclaims everything at exit.
#pragma once

#include <cuda_runtime.h>

#include <deque>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cuda_api.h"

namespace gndet::cuda {

class CachingAllocator final : public Allocator {
 public:
  static constexpr size_t kRound = 512;                      // every size is a multiple of this
  static constexpr size_t kSmallRequest = size_t{1} << 20;   // <= this: the small pool
  static constexpr size_t kSmallSegment = size_t{2} << 20;   // segments of the small pool
  static constexpr size_t kMidRequest = size_t{10} << 20;    // < this: a shared large segment
  static constexpr size_t kLargeSegment = size_t{20} << 20;  // ... of this size
  static constexpr size_t kLargeRound = size_t{2} << 20;     // larger requests round to this

  explicit CachingAllocator(int device) : device_(device) {}

  // On the device's current stream (stream_for); nbytes == 0 gives nullptr.
  void* allocate(size_t nbytes) override;
  // Never throws (runs in destructors); a pointer it does not know is reported on stderr.
  void deallocate(void* ptr, size_t nbytes) override;
  // The block at `ptr` (a pointer this allocator returned) is also used by work on `stream`.
  void record_stream(void* ptr, cudaStream_t stream);

  MemoryStats stats() const;
  void reset_peak();
  void empty_cache();

 private:
  struct Block {
    cudaStream_t stream = nullptr;
    char* ptr = nullptr;
    size_t size = 0;
    size_t requested = 0;
    bool allocated = false;  // false exactly when the block sits in a pool
    bool small = false;
    Block* prev = nullptr;   // neighbours within the same segment
    Block* next = nullptr;
    int pending_events = 0;
    std::vector<cudaStream_t> stream_uses;
  };
  struct BySize {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BySize>;

  Pool& pool_of(const Block* b) { return b->small ? small_pool_ : large_pool_; }
  Block* find_free(Pool& pool, cudaStream_t stream, size_t size);
  Block* new_segment(size_t segment_size, size_t request, cudaStream_t stream, bool small);
  void free_block(Block* b);
  void process_events();
  void sync_all_events();
  void release_cached();  // frees every whole-segment free block; caller holds mu_
  [[noreturn]] void throw_oom(size_t request, size_t segment_size, cudaError_t err);

  const int device_;
  mutable std::mutex mu_;
  Pool small_pool_, large_pool_;
  std::unordered_map<void*, Block*> live_;
  std::deque<std::pair<cudaEvent_t, Block*>> events_;
  std::vector<cudaEvent_t> spare_events_;
  MemoryStats stats_;
};

// The allocator of `device`, created on first use.
CachingAllocator& caching_allocator(int device);

}  // namespace gndet::cuda
