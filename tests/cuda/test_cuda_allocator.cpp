// The CUDA caching allocator: steady state without cudaMalloc under varying shapes, statistics,
// empty_cache, stream-aware reuse, record_stream, and the out-of-memory error.
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/reduce.h"
#include "ops/sort.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::gpu;

namespace {

// One "iteration" of a detection-like workload whose shapes change every time: a feature map,
// a variable number of boxes, their scores sorted, a gather and some reductions. Every tensor
// dies at the end of the call.
void varying_iteration(int i) {
  const int64_t boxes = 200 + (i * 7919) % 3000;          // 200 .. 3199
  const int64_t side = 32 + (i * 104729) % 97;            // 32 .. 128
  const Tensor feat = full({2, 64, side, side}, 0.5 + i, TensorOptions(kFloat32, gpu()));  // up to 8 MiB
  const Tensor scores = full({boxes}, 1.0, TensorOptions(kFloat32, gpu())) * static_cast<double>(i % 5 + 1);
  const Tensor order = topk(scores, std::min<int64_t>(boxes, 1000)).indices;
  const Tensor picked = index_select(full({boxes, 4}, 2.0, TensorOptions(kFloat32, gpu())), 0, order);
  const Tensor pooled = mean(relu(feat - 1.0), {2, 3});
  const Tensor total = sum(picked) + sum(pooled);
  (void)total.item<float>();  // synchronises, like a logged loss
}

}  // namespace

TEST_CASE("cuda allocator: varying shapes reach a steady state without cudaMalloc", "[cuda][allocator]") {
  GNDET_REQUIRE_CUDA();
  constexpr int kShapes = 40;
  for (int i = 0; i < kShapes; ++i) varying_iteration(i);  // warm-up pass
  const cuda::MemoryStats warm = cuda::memory_stats(0);
  for (int pass = 0; pass < 3; ++pass) {
    for (int i = 0; i < kShapes; ++i) varying_iteration(i);
  }
  const cuda::MemoryStats after = cuda::memory_stats(0);
  INFO("after warm-up: " << cuda::memory_summary(0));
  CHECK(after.num_cuda_mallocs == warm.num_cuda_mallocs);
  CHECK(after.reserved_bytes == warm.reserved_bytes);
  CHECK(after.num_allocs > warm.num_allocs);  // the passes did allocate, from the cache
}

TEST_CASE("cuda allocator: statistics follow allocations; empty_cache returns free segments", "[cuda][allocator]") {
  GNDET_REQUIRE_CUDA();
  cuda::empty_cache(0);
  const cuda::MemoryStats base = cuda::memory_stats(0);
  // 256 MiB + 4 bytes: a block of 256 MiB + 512 in a new segment of 258 MiB (large requests get a
  // segment of their own, rounded to 2 MiB; no cached remainder after empty_cache is that large).
  constexpr int64_t kFloats = (int64_t{256} << 20) / 4 + 1;
  {
    const Tensor t = empty({kFloats}, gpu());
    const cuda::MemoryStats s = cuda::memory_stats(0);
    CHECK(s.allocated_bytes - base.allocated_bytes == (int64_t{256} << 20) + 512);
    CHECK(s.reserved_bytes - base.reserved_bytes == int64_t{258} << 20);
    CHECK(s.num_cuda_mallocs == base.num_cuda_mallocs + 1);
    CHECK(s.requested_bytes - base.requested_bytes == kFloats * 4);
    CHECK(s.reserved_bytes >= s.allocated_bytes);
    CHECK(s.peak_allocated_bytes >= s.allocated_bytes);
    CHECK(s.num_allocs == base.num_allocs + 1);
  }
  const cuda::MemoryStats freed = cuda::memory_stats(0);
  CHECK(freed.allocated_bytes == base.allocated_bytes);
  CHECK(freed.requested_bytes == base.requested_bytes);
  CHECK(freed.reserved_bytes > base.reserved_bytes);  // cached, not returned
  cuda::empty_cache(0);
  const cuda::MemoryStats emptied = cuda::memory_stats(0);
  CHECK(emptied.reserved_bytes == base.reserved_bytes);
  CHECK(emptied.num_cuda_frees > freed.num_cuda_frees);
  cuda::reset_peak_memory_stats(0);
  const cuda::MemoryStats reset = cuda::memory_stats(0);
  CHECK(reset.peak_allocated_bytes == reset.allocated_bytes);
  CHECK(reset.peak_reserved_bytes == reset.reserved_bytes);
  const std::string line = cuda::memory_summary(0);
  CHECK_THAT(line, Catch::Contains("allocated") && Catch::Contains("reserved") && Catch::Contains("cudaMalloc"));
}

TEST_CASE("cuda allocator: a freed block is reused on its own stream only", "[cuda][allocator]") {
  GNDET_REQUIRE_CUDA();
  // Best fit is deterministic: the same request in the same cache state gets the same block.
  // empty_cache first, so that no event of an earlier test resolves in between.
  cuda::empty_cache(0);
  const int64_t n = 1000;  // a small-pool block
  void* first = nullptr;
  {
    const Tensor t = empty({n}, gpu());
    first = t.storage()->data();
  }
  {
    const Tensor t = empty({n}, gpu());
    CHECK(t.storage()->data() == first);  // same stream, best fit: the same block comes back
  }
  {
    cuda::StreamGuard guard(cuda::stream_from_pool(0));
    const Tensor t = empty({n}, gpu());
    CHECK(t.storage()->data() != first);  // another stream never gets it
  }
}

TEST_CASE("cuda allocator: record_stream holds a block until the other stream's work is done", "[cuda][allocator]") {
  GNDET_REQUIRE_CUDA();
  cuda::empty_cache(0);
  const cuda::Stream side = cuda::stream_from_pool(0);
  const int64_t n = 3000;
  void* ptr = nullptr;
  {
    Tensor t = full({n}, 2.0, gpu());
    ptr = t.storage()->data();
    cuda::record_stream(t, side);
  }
  // The block's event was recorded on `side` when t died; once side has drained, the next
  // allocation on the default stream processes the event and finds the block free again.
  cuda::synchronize_stream(side);
  const Tensor again = empty({n}, gpu());
  CHECK(again.storage()->data() == ptr);
}

TEST_CASE("cuda allocator: out of memory names the size and the statistics", "[cuda][allocator][errors]") {
  GNDET_REQUIRE_CUDA();
  const int64_t floats = int64_t{1} << 40;  // 4 TiB: more than any GPU has
  const int64_t retries = cuda::memory_stats(0).num_oom_retries;
  CHECK_THROWS_WITH(empty({floats}, gpu()), Catch::Contains("out of memory") && Catch::Contains("cuda:0") &&
                                                Catch::Contains(std::to_string(floats * 4)) &&
                                                Catch::Contains("reserved"));
  CHECK(cuda::memory_stats(0).num_oom_retries == retries + 1);
  // The failure is not sticky: the device still works.
  test::check_equal(full({4}, 1.5, gpu()).cpu(), full({4}, 1.5));
}
