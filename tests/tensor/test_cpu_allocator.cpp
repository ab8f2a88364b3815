// The CPU allocator's cache of large blocks (tensor/cpu_allocator.h): size classes, reuse, splits
// and merges, the limit and its least-recently-cached eviction, the high-water rule, the live-byte
// statistics.
#include "tensor/backend.h"
#include "tensor/cpu_allocator.h"
#include "tensor/factory.h"
#include "tests/support.h"

#include <limits>
#include <vector>

using namespace gndet;

namespace {
// Restores the cache limit a test changed, so that later tests see the default.
struct LimitGuard {
  int64_t saved = cpu_cache_stats().limit_bytes;
  ~LimitGuard() { set_cpu_cache_limit(saved); }
};
}  // namespace

TEST_CASE("CPU cache size classes: at most 1/16 above the request, 64-byte multiples", "[tensor][allocator]") {
  for (size_t n : {kMinCached, kMinCached + 1, size_t{1000000}, size_t{69} << 20, (size_t{1} << 30) + 3}) {
    const size_t c = cpu_cache_size_class(n);
    CHECK(c >= n);
    CHECK(c % 64 == 0);
    CHECK(static_cast<double>(c) <= static_cast<double>(n) * (1.0 + 1.0 / 16.0) + 64.0);
  }
  // Requests in one class share blocks; the next class up does not.
  CHECK(cpu_cache_size_class(size_t{1} << 20) == cpu_cache_size_class((size_t{1} << 20) - 100));
  CHECK(cpu_cache_size_class((size_t{1} << 20) + 1) > cpu_cache_size_class(size_t{1} << 20));
}

TEST_CASE("CPU cache: a freed large block serves the next request of its class", "[tensor][allocator]") {
  if (!cpu_cache_stats().mapped) return test::skip("GNDET_CPU_CACHE_MB=0: no cache in this process");
  LimitGuard guard;
  set_cpu_cache_limit(int64_t{64} << 20);
  cpu_empty_cache();
  Allocator* a = cpu_allocator();
  const size_t n = size_t{3} << 20;
  void* p = a->allocate(n);
  a->deallocate(p, n);
  CHECK(cpu_cache_stats().cached_bytes == static_cast<int64_t>(cpu_cache_size_class(n)));
  const int64_t hits = cpu_cache_stats().hits;
  void* q = a->allocate(n - 1000);  // same class
  CHECK(q == p);
  CHECK(cpu_cache_stats().hits == hits + 1);
  CHECK(cpu_cache_stats().cached_bytes == 0);
  a->deallocate(q, n - 1000);
  // Tensors go through it too, and a reused block is not assumed to be zero.
  const Tensor t = full({1 << 20}, 2.5);
  const float* d = static_cast<const float*>(t.raw_data());
  CHECK((d[0] == 2.5f && d[(1 << 19) + 7] == 2.5f && d[(1 << 20) - 1] == 2.5f));
}

TEST_CASE("CPU cache: the limit holds, evicting the least recently cached blocks", "[tensor][allocator]") {
  if (!cpu_cache_stats().mapped) return test::skip("GNDET_CPU_CACHE_MB=0: no cache in this process");
  LimitGuard guard;
  const size_t n = size_t{1} << 20, c = cpu_cache_size_class(n);
  set_cpu_cache_limit(static_cast<int64_t>(3 * c));
  cpu_empty_cache();
  Allocator* a = cpu_allocator();
  void* blocks[4];
  for (void*& b : blocks) b = a->allocate(n);
  const int64_t releases = cpu_cache_stats().releases;
  for (void* b : blocks) a->deallocate(b, n);
  CHECK(cpu_cache_stats().cached_bytes == static_cast<int64_t>(3 * c));
  CHECK(cpu_cache_stats().releases == releases + 1);
  // The oldest (blocks[0]) was unmapped; the newest is handed out first.
  CHECK(a->allocate(n) == blocks[3]);
  CHECK(a->allocate(n) == blocks[2]);
  CHECK(a->allocate(n) == blocks[1]);
  for (int i = 1; i < 4; ++i) a->deallocate(blocks[i], n);
  // Limit 0: nothing is kept, and lowering the limit releases what was cached.
  set_cpu_cache_limit(0);
  CHECK(cpu_cache_stats().cached_bytes == 0);
  void* p = a->allocate(n);
  a->deallocate(p, n);
  CHECK(cpu_cache_stats().cached_bytes == 0);
  CHECK_THROWS(set_cpu_cache_limit(-1));
}

TEST_CASE("CPU memory statistics: live bytes, their peak and its reset", "[tensor][allocator]") {
  const CpuCacheStats s0 = cpu_cache_stats();
  reset_cpu_peak_memory();
  {
    const Tensor big = empty({int64_t{1} << 20});  // 4 MiB: a cacheable class, counted at its class size
    const Tensor small = empty({1000});             // 4000 bytes from malloc, counted as asked
    const CpuCacheStats s1 = cpu_cache_stats();
    CHECK(s1.allocated_bytes - s0.allocated_bytes ==
          static_cast<int64_t>(cpu_cache_size_class(size_t{4} << 20)) + 4000);
    CHECK(s1.peak_allocated_bytes == s1.allocated_bytes);
  }
  const CpuCacheStats s2 = cpu_cache_stats();
  CHECK(s2.allocated_bytes == s0.allocated_bytes);
  CHECK(s2.peak_allocated_bytes == s0.allocated_bytes + static_cast<int64_t>(cpu_cache_size_class(size_t{4} << 20)) + 4000);
  reset_cpu_peak_memory();
  CHECK(cpu_cache_stats().peak_allocated_bytes == s2.allocated_bytes);
}

TEST_CASE("CPU cache: a smaller request splits a cached block, frees merge the pieces back", "[tensor][allocator]") {
  if (!cpu_cache_stats().mapped) return test::skip("GNDET_CPU_CACHE_MB=0: no cache in this process");
  LimitGuard guard;
  set_cpu_cache_limit(int64_t{256} << 20);
  cpu_empty_cache();
  Allocator* a = cpu_allocator();
  constexpr size_t kMiB = size_t{1} << 20;
  const size_t big = 8 * kMiB, part = 2 * kMiB;  // both size classes already
  REQUIRE((cpu_cache_size_class(big) == big && cpu_cache_size_class(part) == part));
  char* b = static_cast<char*>(a->allocate(big));
  a->deallocate(b, big);
  const CpuCacheStats s0 = cpu_cache_stats();
  // Best fit: both pieces come off the cached block's front, in order; no new mapping.
  void* first = a->allocate(part);
  void* second = a->allocate(part);
  CHECK(first == b);
  CHECK(second == b + part);
  const CpuCacheStats s1 = cpu_cache_stats();
  CHECK(s1.misses == s0.misses);
  CHECK(s1.hits == s0.hits + 2);
  CHECK(s1.cached_bytes == static_cast<int64_t>(big - 2 * part));
  // Freeing the first leaves two cached pieces (the live second one between them); freeing the
  // second joins all three, so the whole block serves a request of its size again.
  a->deallocate(first, part);
  CHECK(cpu_cache_stats().cached_bytes == static_cast<int64_t>(big - part));
  a->deallocate(second, part);
  CHECK(cpu_cache_stats().cached_bytes == static_cast<int64_t>(big));
  void* whole = a->allocate(big);
  CHECK(whole == b);
  CHECK(cpu_cache_stats().misses == s0.misses);
  a->deallocate(whole, big);

  // Blocks of two mappings never merge, even when the kernel placed them side by side: a request
  // of their summed size is a miss.
  cpu_empty_cache();
  void* x = a->allocate(part);
  void* y = a->allocate(part);
  a->deallocate(x, part);
  a->deallocate(y, part);
  const int64_t misses = cpu_cache_stats().misses;
  void* both = a->allocate(2 * part);
  CHECK(cpu_cache_stats().misses == misses + 1);
  a->deallocate(both, 2 * part);
  cpu_empty_cache();
}

TEST_CASE("CPU cache: a miss gives back cached blocks so that live + cached stay under the high-water mark",
          "[tensor][allocator]") {
  if (!cpu_cache_stats().mapped) return test::skip("GNDET_CPU_CACHE_MB=0: no cache in this process");
  LimitGuard guard;
  set_cpu_cache_limit(std::numeric_limits<int64_t>::max());
  cpu_empty_cache();
  Allocator* a = cpu_allocator();
  constexpr size_t kMiB = size_t{1} << 20;
  // Blocks are mapped but never touched, so this costs address space, not memory.
  const size_t n = 512 * kMiB, c = cpu_cache_size_class(n);
  const CpuCacheStats s0 = cpu_cache_stats();
  const int64_t k = (s0.high_water_bytes - s0.allocated_bytes) / static_cast<int64_t>(c) + 2;
  std::vector<void*> blocks;
  for (int64_t i = 0; i < k; ++i) blocks.push_back(a->allocate(n));
  const CpuCacheStats s1 = cpu_cache_stats();
  CHECK(s1.high_water_bytes == s1.allocated_bytes);  // pushed past the old mark: it followed
  for (void* b : blocks) a->deallocate(b, n);
  CHECK(cpu_cache_stats().cached_bytes == k * static_cast<int64_t>(c));

  // A request larger than every cached block is a miss. The oldest cached block (blocks[0]) goes,
  // and only it, so that live + cached + new stay under the mark plus the slack; its pages grow
  // into the new block (mremap).
  const size_t beyond = n + static_cast<size_t>(kCacheSlack) / 2;
  REQUIRE(cpu_cache_size_class(beyond) == beyond);
  void* other = a->allocate(beyond);
  const CpuCacheStats s2 = cpu_cache_stats();
  CHECK(s2.misses == s1.misses + 1);
  CHECK(s2.releases == s1.releases + 1);
  CHECK(s2.cached_bytes == (k - 1) * static_cast<int64_t>(c));
  CHECK(s2.allocated_bytes + s2.cached_bytes <= s2.high_water_bytes + kCacheSlack);
  CHECK(s2.high_water_bytes == s1.high_water_bytes);
  // The rest are still cached, newest first.
  for (int64_t i = k - 1; i >= 1; --i) CHECK(a->allocate(n) == blocks[static_cast<size_t>(i)]);
  for (int64_t i = 1; i < k; ++i) a->deallocate(blocks[static_cast<size_t>(i)], n);
  a->deallocate(other, beyond);
  cpu_empty_cache();
}
