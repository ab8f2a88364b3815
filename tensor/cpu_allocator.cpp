#include "tensor/cpu_allocator.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>

#include "tensor/backend.h"
#include "tensor/error.h"

namespace gndet {
namespace {

constexpr int64_t kUnlimited = std::numeric_limits<int64_t>::max();

void* heap_alloc(size_t bytes) {
  // 64-byte alignment suits AVX-512 loads and keeps rows of different tensors off shared lines;
  // aligned_alloc wants a size that is a multiple of it.
  const size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) GNDET_FAIL("out of host memory allocating ", bytes, " bytes");
  return p;
}

// Large blocks come straight from the kernel, not from malloc: glibc raises its mmap threshold to
// the largest block it has seen freed (up to 32 MB), after which blocks of tens of MB land in its
// heap, where freed space is seldom given back. A training iteration of R-50 Mask R-CNN held
// ~0.9 GiB more resident memory than its tensors ever needed at once that way. A mapped block is
// resident exactly while it exists. (Transparent huge pages were tried: 12x fewer page faults,
// but twice the system time, spent compacting memory; not taken.)
void* try_map_block(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? nullptr : p;
}

// Unlimited unless GNDET_CPU_CACHE_MB says otherwise: the high-water rule of allocate() already
// bounds what the cache holds.
int64_t limit_from_environment() {
  const char* env = std::getenv("GNDET_CPU_CACHE_MB");
  if (env == nullptr || *env == '\0') return kUnlimited;
  char* end = nullptr;
  const long long mb = std::strtoll(env, &end, 10);
  // A bad value must not stop the program from starting: it falls back to the default, loudly.
  if (*end != '\0' || mb < 0 || mb > (int64_t{1} << 30)) {
    std::fprintf(stderr, "gndet: ignoring GNDET_CPU_CACHE_MB='%s' (expected megabytes, 0 or more); not limiting the cache\n", env);
    return kUnlimited;
  }
  return static_cast<int64_t>(mb) << 20;
}

class CachingCpuAllocator final : public Allocator {
 public:
  CachingCpuAllocator() : limit_(limit_from_environment()), heap_only_(limit_ == 0) {}

  void* allocate(size_t nbytes) override {
    if (nbytes < kMinCached || heap_only_) {
      void* p = heap_alloc(nbytes);
      count_allocated(static_cast<int64_t>(nbytes));
      return p;
    }
    const size_t size = cpu_cache_size_class(nbytes);
    std::vector<Block> released;
    {
      std::lock_guard<std::mutex> lock(mu_);
      // Best fit: the smallest cached block that holds the request (the newest of its size); a
      // larger one is split, its tail staying cached.
      const auto fit = by_size_.lower_bound({size, 0, nullptr});
      if (fit != by_size_.end()) {
        const Block b = take(free_.find(std::get<2>(*fit)));
        if (b.size > size) put({b.ptr + size, b.size - size, b.mapping, b.stamp});
        live_[b.ptr] = b.mapping;
        ++hits_;
        count_allocated(static_cast<int64_t>(size));
        return b.ptr;
      }
      ++misses_;
      // The high-water rule: a miss first gives back cached blocks, oldest first, until live +
      // cached + the new block fit under the most that live tensors have ever held, plus
      // kCacheSlack. Frees only move bytes from live to cached, so the resident large blocks never
      // exceed that: the cache reuses the peak's memory rather than adding to it. (A cache bounded
      // by a size instead held up to 1 GiB of blocks of the wrong sizes at the peak.)
      const int64_t live = allocated_.load(std::memory_order_relaxed) + static_cast<int64_t>(size);
      high_water_ = std::max(high_water_, live);
      evict_until(high_water_ + kCacheSlack - live, &released);
    }
    // The largest evicted block becomes the new one: mremap keeps its pages, which are resident
    // already, so the new tensor is not page-faulted in (only growth beyond them is). mremap may
    // refuse (a block merged across what the kernel keeps as two mappings): then a fresh mapping.
    char* p = nullptr;
    if (!released.empty()) {
      const auto largest = std::max_element(released.begin(), released.end(),
                                            [](const Block& a, const Block& b) { return a.size < b.size; });
      void* q = mremap(largest->ptr, largest->size, size, MREMAP_MAYMOVE);
      if (q != MAP_FAILED) {
        p = static_cast<char*>(q);
        released.erase(largest);
      }
    }
    release(released);
    if (p == nullptr) p = static_cast<char*>(try_map_block(size));
    if (p == nullptr) {
      trim(0);  // the kernel may lack exactly what the cache holds: give it all back, retry once
      p = static_cast<char*>(try_map_block(size));
      if (p == nullptr) GNDET_FAIL("out of host memory allocating ", nbytes, " bytes");
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_[p] = ++mappings_;
    }
    count_allocated(static_cast<int64_t>(size));
    return p;
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (ptr == nullptr) return;
    if (nbytes < kMinCached || heap_only_) {
      std::free(ptr);
      count_allocated(-static_cast<int64_t>(nbytes));
      return;
    }
    char* const p = static_cast<char*>(ptr);
    const size_t size = cpu_cache_size_class(nbytes);
    std::vector<Block> released;
    {
      std::lock_guard<std::mutex> lock(mu_);
      count_allocated(-static_cast<int64_t>(size));
      const auto live = live_.find(p);
      if (live == live_.end()) {  // a double free or a foreign pointer: memory is corrupt, stop here
        std::fprintf(stderr, "gndet: CPU allocator asked to free %p (%zu bytes), which it did not hand out\n", ptr, nbytes);
        std::abort();
      }
      Block b{p, size, live->second, ++clock_};
      live_.erase(live);
      // Merge with cached neighbours carved from the same mapping: one block again, so that a
      // large request finds it whole.
      const auto next = free_.find(b.ptr + b.size);
      if (next != free_.end() && next->second.mapping == b.mapping) b.size += take(next).size;
      auto prev = free_.lower_bound(b.ptr);
      if (prev != free_.begin() && (--prev)->second.mapping == b.mapping && prev->first + prev->second.size == b.ptr) {
        const Block before = take(prev);
        b.ptr = before.ptr;
        b.size += before.size;
      }
      put(b);
      evict_until(limit_, &released);
    }
    release(released);
  }

  CpuCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {cached_, limit_, hits_, misses_, releases_, allocated_.load(), peak_allocated_.load(), high_water_, !heap_only_};
  }

  void reset_peak() { peak_allocated_.store(allocated_.load()); }

  // A new limit (-1: keep the current one), then releases blocks until at most `keep` bytes stay.
  void trim(int64_t keep, int64_t new_limit = -1) {
    std::vector<Block> released;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (new_limit >= 0) limit_ = new_limit;
      evict_until(std::min(keep, limit_), &released);
    }
    release(released);
  }

 private:
  // A page-aligned range of some mapping: cached (in free_) or live (its start in live_).
  struct Block {
    char* ptr;
    size_t size;
    uint64_t mapping;  // which mmap it was carved from: only pieces of one are merged
    uint64_t stamp;    // when it was cached (a split tail keeps its block's): eviction order
  };

  // Small blocks bypass the mutex, so the counts are atomics; the peak rises by compare-and-swap.
  void count_allocated(int64_t delta) {
    const int64_t now = allocated_.fetch_add(delta, std::memory_order_relaxed) + delta;
    int64_t peak = peak_allocated_.load(std::memory_order_relaxed);
    while (now > peak && !peak_allocated_.compare_exchange_weak(peak, now, std::memory_order_relaxed)) {
    }
  }

  // Outside the lock: munmap can take a while. Any page-aligned range may be unmapped, so a
  // piece of a mapping goes back on its own.
  static void release(const std::vector<Block>& blocks) {
    for (const Block& b : blocks) munmap(b.ptr, b.size);
  }

  // The three indexes of the cached blocks: by address (neighbours to merge), by size (best fit;
  // the newest first among equal sizes, its pages the likeliest to be in cache) and by age.
  void put(const Block& b) {
    free_.emplace(b.ptr, b);
    by_size_.emplace(b.size, ~b.stamp, b.ptr);
    by_age_.emplace(b.stamp, b.ptr);
    cached_ += static_cast<int64_t>(b.size);
  }
  Block take(std::map<char*, Block>::iterator it) {
    const Block b = it->second;
    free_.erase(it);
    by_size_.erase({b.size, ~b.stamp, b.ptr});
    by_age_.erase({b.stamp, b.ptr});
    cached_ -= static_cast<int64_t>(b.size);
    return b;
  }

  // Takes the least recently cached blocks out of the cache (into *released) until at most
  // `target` bytes stay cached.
  void evict_until(int64_t target, std::vector<Block>* released) {
    while (cached_ > target && !by_age_.empty()) {
      released->push_back(take(free_.find(by_age_.begin()->second)));
      ++releases_;
    }
  }

  std::mutex mu_;
  int64_t limit_;
  // GNDET_CPU_CACHE_MB=0 at start: every block from the C heap, which AddressSanitizer watches
  // (tools/sanitize); fixed for the process, so a block is always freed the way it was allocated.
  const bool heap_only_;
  int64_t cached_ = 0, hits_ = 0, misses_ = 0, releases_ = 0;
  int64_t high_water_ = 0;  // the most bytes live tensors have held (at a miss), for the rule above
  uint64_t clock_ = 0, mappings_ = 0;
  std::atomic<int64_t> allocated_{0}, peak_allocated_{0};
  std::map<char*, Block> free_;
  std::set<std::tuple<size_t, uint64_t, char*>> by_size_;
  std::set<std::pair<uint64_t, char*>> by_age_;
  std::unordered_map<char*, uint64_t> live_;  // live large blocks: their mapping
};

CachingCpuAllocator& the_allocator() {
  static auto* alloc = new CachingCpuAllocator();  // never destroyed (see the header)
  return *alloc;
}

}  // namespace

size_t cpu_cache_size_class(size_t nbytes) {
  // 16 classes per power of two: the step is 2^(floor(log2 n) - 4), at least 64 bytes.
  const int log2 = std::bit_width(nbytes) - 1;
  const size_t step = std::max<size_t>(64, size_t{1} << std::max(0, log2 - 4));
  return (nbytes + step - 1) / step * step;
}

CpuCacheStats cpu_cache_stats() { return the_allocator().stats(); }
void cpu_empty_cache() { the_allocator().trim(0); }
void set_cpu_cache_limit(int64_t bytes) {
  GNDET_CHECK(bytes >= 0, "set_cpu_cache_limit: expected 0 or more bytes, got ", bytes);
  the_allocator().trim(bytes, bytes);
}

void reset_cpu_peak_memory() { the_allocator().reset_peak(); }

Allocator* cpu_allocator() { return &the_allocator(); }

}  // namespace gndet
