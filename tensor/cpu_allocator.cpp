#include "tensor/cpu_allocator.h"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor/backend.h"
#include "tensor/error.h"

namespace gndet {
namespace {

// nullptr when the C heap has no room.
void* try_heap_alloc(size_t bytes) {
  // 64-byte alignment suits AVX-512 loads and keeps rows of different tensors off shared lines;
  // aligned_alloc wants a size that is a multiple of it.
  const size_t rounded = bytes == 0 ? 64 : (bytes + 63) / 64 * 64;
  return std::aligned_alloc(64, rounded);
}

void* heap_alloc(size_t bytes) {
  void* p = try_heap_alloc(bytes);
  if (p == nullptr) GNDET_FAIL("out of host memory allocating ", bytes, " bytes");
  return p;
}

int64_t limit_from_environment() {
  const char* env = std::getenv("GNDET_CPU_CACHE_MB");
  if (env == nullptr || *env == '\0') return int64_t{1024} << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(env, &end, 10);
  // A bad value must not stop the program from starting: it falls back to the default, loudly.
  if (*end != '\0' || mb < 0 || mb > (int64_t{1} << 30)) {
    std::fprintf(stderr, "gndet: ignoring GNDET_CPU_CACHE_MB='%s' (expected megabytes, 0 or more); using 1024\n", env);
    return int64_t{1024} << 20;
  }
  return static_cast<int64_t>(mb) << 20;
}

class CachingCpuAllocator final : public Allocator {
 public:
  CachingCpuAllocator() : limit_(limit_from_environment()) {}

  void* allocate(size_t nbytes) override {
    if (nbytes < kMinCached) return heap_alloc(nbytes);
    const size_t size = cpu_cache_size_class(nbytes);
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        const auto block = it->second.back();
        it->second.pop_back();
        void* p = block->ptr;
        lru_.erase(block);
        cached_ -= static_cast<int64_t>(size);
        ++hits_;
        return p;
      }
      ++misses_;
    }
    if (void* p = try_heap_alloc(size)) return p;
    trim(0);  // the cached blocks of other classes may be what the heap lacks: give them back, retry once
    return heap_alloc(size);
  }

  void deallocate(void* p, size_t nbytes) override {
    if (p == nullptr) return;
    if (nbytes < kMinCached) {
      std::free(p);
      return;
    }
    const size_t size = cpu_cache_size_class(nbytes);
    std::vector<void*> released;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (static_cast<int64_t>(size) > limit_) {
        released.push_back(p);
      } else {
        evict_until(limit_ - static_cast<int64_t>(size), &released);
        lru_.push_back({p, size});
        free_[size].push_back(std::prev(lru_.end()));
        cached_ += static_cast<int64_t>(size);
      }
    }
    for (void* r : released) std::free(r);  // outside the lock: munmap can take a while
  }

  CpuCacheStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return {cached_, limit_, hits_, misses_, releases_};
  }

  // A new limit (-1: keep the current one), then releases blocks until at most `keep` bytes stay.
  void trim(int64_t keep, int64_t new_limit = -1) {
    std::vector<void*> released;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (new_limit >= 0) limit_ = new_limit;
      evict_until(std::min(keep, limit_), &released);
    }
    for (void* r : released) std::free(r);
  }

 private:
  struct Block {
    void* ptr;
    size_t size;
  };
  using Lru = std::list<Block>;

  // Drops the least recently cached blocks until at most `target` bytes stay cached.
  void evict_until(int64_t target, std::vector<void*>* released) {
    while (cached_ > target && !lru_.empty()) {
      const Lru::iterator oldest = lru_.begin();
      std::vector<Lru::iterator>& same = free_[oldest->size];
      for (size_t i = 0; i < same.size(); ++i) {
        if (same[i] == oldest) {
          same.erase(same.begin() + static_cast<std::ptrdiff_t>(i));
          break;
        }
      }
      released->push_back(oldest->ptr);
      cached_ -= static_cast<int64_t>(oldest->size);
      ++releases_;
      lru_.erase(oldest);
    }
  }

  std::mutex mu_;
  int64_t limit_;
  int64_t cached_ = 0, hits_ = 0, misses_ = 0, releases_ = 0;
  Lru lru_;                                                // oldest first
  std::unordered_map<size_t, std::vector<Lru::iterator>> free_;  // by size class, newest last
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

Allocator* cpu_allocator() { return &the_allocator(); }

}  // namespace gndet
