// CUDA parity of the indexing kernels (gather, index_select, scatter_add, index_add, nonzero),
// their out-of-range errors, and the index ops with autograd. Copies are exact; accumulations
// of float32 use atomics in arbitrary order, so they are compared to 1e-5 relative plus 1e-5
// absolute (a handful of additions of values below 3); integer accumulations are exact.
#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/reduce.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::check_equal;
using test::gpu;

namespace {

// (outer, src_dim, inner) around the indexed dimension, and how many indices.
struct Geo {
  int64_t outer, src_dim, inner, idx_dim;
};
const std::vector<Geo> kGeos = {{1, 1, 1, 1}, {3, 5, 4, 7}, {1, 1000, 1, 5000}, {64, 3, 129, 2}, {2, 40, 3, 0}};

IndexGeometry to_geometry(const Geo& g) { return IndexGeometry{g.outer, g.src_dim, g.idx_dim, g.inner}; }

}  // namespace

TEST_CASE("cuda parity: gather and index_select copy every dtype with int64 and int32 indices", "[cuda][index]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 5000;
  for (const DType dt : test::all_dtypes()) {
    for (const DType it : {kInt64, kInt32}) {
      for (const Geo& g : kGeos) {
        INFO(dtype_name(dt) << " indices " << dtype_name(it) << " geometry " << g.outer << "x" << g.src_dim << "x"
                            << g.inner << " idx " << g.idx_dim);
        const Tensor src = test::random_nonzero({g.outer, g.src_dim, g.inner}, seed++, dt);
        const IndexGeometry geo = to_geometry(g);
        // gather: one index per output element.
        const Tensor gidx = test::random_ints({g.outer, g.idx_dim, g.inner}, seed++, 0, g.src_dim, it);
        Tensor gc = test::poisoned(gidx.shape(), TensorOptions(dt)), gg = test::poisoned(gidx.shape(), TensorOptions(dt, gpu()));
        if (gc.numel() > 0) {
          gather_kernel(kCPU, gc, src, gidx, geo);
          gather_kernel(gpu(), gg, src.to(gpu()), gidx.to(gpu()), geo);
        }
        check_equal(gg, gc, "gather");
        // index_select: one index per slice.
        const Tensor sidx = test::random_ints({g.idx_dim}, seed++, 0, g.src_dim, it);
        Tensor sc = test::poisoned({g.outer, g.idx_dim, g.inner}, TensorOptions(dt));
        Tensor sg = test::poisoned({g.outer, g.idx_dim, g.inner}, TensorOptions(dt, gpu()));
        if (sc.numel() > 0) {
          index_select_kernel(kCPU, sc, src, sidx, geo);
          index_select_kernel(gpu(), sg, src.to(gpu()), sidx.to(gpu()), geo);
        }
        check_equal(sg, sc, "index_select");
      }
    }
  }
}

TEST_CASE("cuda parity: scatter_add and index_add accumulate repeated indices on every numeric dtype", "[cuda][index]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 5100;
  for (const DType dt : {kFloat32, kFloat64, kInt64, kInt32, kUInt8}) {
    for (const DType it : {kInt64, kInt32}) {
      for (const Geo& g : kGeos) {
        INFO(dtype_name(dt) << " indices " << dtype_name(it) << " geometry " << g.outer << "x" << g.src_dim << "x"
                            << g.inner << " idx " << g.idx_dim);
        const IndexGeometry geo = to_geometry(g);
        // The destination starts from random values (the same on both devices); idx_dim >
        // src_dim in most cases, so indices repeat and the atomics collide. uint8 values stay
        // small enough that no sum leaves [0, 255]... except that wrapping is exact anyway.
        const Tensor init = test::random_nonzero({g.outer, g.src_dim, g.inner}, seed++, dt, 0.25, dt == kUInt8 ? 3 : 3.0);
        const Tensor src = test::random_nonzero({g.outer, g.idx_dim, g.inner}, seed++, dt, 0.25, dt == kUInt8 ? 3 : 3.0);
        const double atol = is_floating(dt) ? 1e-5 : 0.0, rtol = is_floating(dt) ? 1e-5 : 0.0;

        const Tensor sidx = test::random_ints(src.shape(), seed++, 0, g.src_dim, it);
        Tensor oc = init.clone(), og = init.to(gpu());
        if (src.numel() > 0) {
          scatter_add_kernel(kCPU, oc, sidx, src, geo);
          scatter_add_kernel(gpu(), og, sidx.to(gpu()), src.to(gpu()), geo);
        }
        check_close(og, oc, atol, rtol, "scatter_add");

        const Tensor aidx = test::random_ints({g.idx_dim}, seed++, 0, g.src_dim, it);
        Tensor ac = init.clone(), ag = init.to(gpu());
        if (src.numel() > 0) {
          index_add_kernel(kCPU, ac, aidx, src, geo);
          index_add_kernel(gpu(), ag, aidx.to(gpu()), src.to(gpu()), geo);
        }
        check_close(ag, ac, atol, rtol, "index_add");
      }
    }
  }
}

TEST_CASE("cuda: out-of-range indices raise the CPU's error and leave the device usable", "[cuda][index][errors]") {
  GNDET_REQUIRE_CUDA();
  const Tensor x = test::random_nonzero({5, 3}, 5200).to(gpu());
  for (const int64_t bad : {int64_t{5}, int64_t{-1}, int64_t{1} << 40}) {
    INFO("index " << bad);
    const std::string msg = "index " + std::to_string(bad) + " is out of range for a dimension of size 5";
    const Tensor idx = from_data<int64_t>({0, bad, 2}, gpu());
    CHECK_THROWS_WITH(index_select(x, 0, idx), Catch::Contains("index_select") && Catch::Contains(msg));
    CHECK_THROWS_WITH(index_add(x, 0, idx, ones({3, 3}, gpu())), Catch::Contains("index_add") && Catch::Contains(msg));
    const Tensor gidx = from_data<int64_t>({0, 1, 2, bad, 0, 1}, {2, 3}, gpu());
    CHECK_THROWS_WITH(gather(x, 0, gidx), Catch::Contains("gather") && Catch::Contains(msg));
    CHECK_THROWS_WITH(scatter_add(x, 0, gidx, ones({2, 3}, gpu())), Catch::Contains("scatter_add") && Catch::Contains(msg));
  }
  const Tensor ok = index_select(x, 0, from_data<int32_t>({4, 0}, gpu()));
  check_equal(ok.cpu(), index_select(x.cpu(), 0, from_data<int32_t>({4, 0})));
}

TEST_CASE("cuda parity: nonzero on masks of several shapes", "[cuda][index]") {
  GNDET_REQUIRE_CUDA();
  uint64_t seed = 5300;
  const std::vector<Shape> shapes = {{1}, {17}, {4, 5, 6}, {0, 3}, {}, {1000003}};
  for (const Shape& s : shapes) {
    for (const int density : {0, 1, 50, 100}) {  // percent of true elements
      INFO(shape_str(s) << " density " << density << "%");
      const Tensor u = test::random_nonzero(s, seed++, kFloat32, 0.0, 1.0, true);
      const Tensor mask = lt(u, density / 100.0 + (density == 100 ? 1.0 : 0.0));
      const Tensor want = nonzero(mask);
      const Tensor got = nonzero(mask.to(gpu()));
      CHECK(got.is_cuda());
      check_equal(got.cpu(), want);
    }
  }
  // Non-bool input: nonzero of a float tensor with some exact zeros.
  const Tensor f = from_data<float>({0, 1.5, 0, -2, 3, 0}, {2, 3});
  check_equal(nonzero(f.to(gpu())).cpu(), nonzero(f));
}

TEST_CASE("cuda parity: index ops with autograd", "[cuda][index][autograd]") {
  GNDET_REQUIRE_CUDA();
  const Tensor xc = test::random_nonzero({6, 4, 3}, 5400);
  const Tensor src_c = test::random_nonzero({6, 2, 3}, 5401);
  const Tensor sel = from_data<int64_t>({5, 0, 5, 2, 3});
  const Tensor gat = test::random_ints({6, 2, 3}, 5402, 0, 4);
  const Tensor mask = from_data<bool>({true, false, true, true, false, true});
  auto f = [](const Tensor& x, const Tensor& src, const Tensor& s, const Tensor& gi, const Tensor& m) {
    Tensor r = sum(index_select(x, 0, s) * 2.0) + sum(gather(x, 1, gi) * gather(x, 1, gi));
    r = r + sum(scatter_add(x, 1, gi, src) * x) + sum(masked_fill(x, m.reshape({6, 1, 1}), 0.5) * 3.0);
    return r + sum(masked_select_rows(x, m));
  };
  Tensor x1 = xc.clone().set_requires_grad(), s1 = src_c.clone().set_requires_grad();
  Tensor x2 = xc.to(gpu()).set_requires_grad(), s2 = src_c.to(gpu()).set_requires_grad();
  const Tensor y1 = f(x1, s1, sel, gat, mask);
  const Tensor y2 = f(x2, s2, sel.to(gpu()), gat.to(gpu()), mask.to(gpu()));
  check_close(y2, y1, 1e-4, 1e-5, "forward");  // sums of ~200 float terms
  y1.backward();
  y2.backward();
  check_close(x2.grad(), x1.grad(), 1e-5, 1e-5, "grad x");
  check_close(s2.grad(), s1.grad(), 1e-5, 1e-5, "grad src");
}
