// The CPU allocator's cache of large blocks (tensor/cpu_allocator.h): size classes, reuse, the
// limit and its least-recently-cached eviction.
#include "tensor/backend.h"
#include "tensor/cpu_allocator.h"
#include "tensor/factory.h"
#include "tests/support.h"

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
  // The oldest (blocks[0]) went back to the C heap; the newest is handed out first.
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
