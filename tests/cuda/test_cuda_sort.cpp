// CUDA parity of sort and top-k: values and indices must equal the CPU's exactly, including the
// stable order of ties (lower index first, in both directions), NaN as the largest value, and
// -0.0 equal to +0.0. Inputs are drawn from a handful of values so that ties are everywhere. The
// row layouts cover every GPU path: one row (plain radix sort), several rows of narrow keys
// (composite row|key keys), several rows of 64-bit keys (two sorts).
#include <limits>

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/sort.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::check_equal;
using test::gpu;

namespace {

// Tie-heavy values; floats also get NaN, +-inf and both zeros sprinkled in.
Tensor tie_heavy(const Shape& s, uint64_t seed, DType dt) {
  Tensor t = test::random_ints(s, seed, -3, 4, is_floating(dt) ? kInt64 : dt).to(dt);
  if (!is_floating(dt)) return t;
  const double specials[] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(), -0.0, 0.0, 0.5, -0.5};
  Tensor flat = t.reshape({-1});
  autograd::NoGradGuard no_grad;
  Generator gen(seed + 1);
  for (int64_t i = 0; i < flat.numel(); ++i) {
    if (gen.uniform() < 0.2) flat.narrow(0, i, 1).fill_(specials[gen.randint(0, 7)]);
  }
  return t;
}

const std::vector<Shape> kRowShapes = {{1, 1}, {1, 5000}, {1, 300001}, {37, 129}, {1000, 8}, {3, 2}};

}  // namespace

TEST_CASE("cuda parity: sort rows of every numeric dtype, ties, NaN and signed zeros, both directions", "[cuda][sort]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 6000;
  for (const DType dt : {kFloat32, kFloat64, kInt64, kInt32, kUInt8}) {
    for (const Shape& s : kRowShapes) {
      if (dt != kFloat32 && s[1] > 100000) continue;  // the large row once
      for (const bool descending : {false, true}) {
        INFO(dtype_name(dt) << " " << shape_str(s) << (descending ? " descending" : " ascending"));
        const Tensor in = tie_heavy(s, seed++, dt);
        Tensor vc = test::poisoned(s, TensorOptions(dt)), vg = test::poisoned(s, TensorOptions(dt, gpu()));
        Tensor ic = test::poisoned(s, TensorOptions(kInt64)), ig = test::poisoned(s, TensorOptions(kInt64, gpu()));
        sort_rows_kernel(kCPU, vc, ic, in, descending);
        sort_rows_kernel(gpu(), vg, ig, in.to(gpu()), descending);
        check_equal(vg, vc, "values");
        check_equal(ig, ic, "indices");
      }
    }
  }
}

TEST_CASE("cuda parity: top-k rows for several k, largest and smallest", "[cuda][sort]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 6100;
  for (const DType dt : {kFloat32, kFloat64, kInt64, kInt32, kUInt8}) {
    for (const Shape& s : kRowShapes) {
      if (dt != kFloat32 && s[1] > 100000) continue;
      for (const int64_t k : {int64_t{1}, std::min<int64_t>(5, s[1]), s[1]}) {
        for (const bool largest : {true, false}) {
          INFO(dtype_name(dt) << " " << shape_str(s) << " k " << k << (largest ? " largest" : " smallest"));
          const Tensor in = tie_heavy(s, seed++, dt);
          const Shape out_shape = {s[0], k};
          Tensor vc = test::poisoned(out_shape, TensorOptions(dt)), vg = test::poisoned(out_shape, TensorOptions(dt, gpu()));
          Tensor ic = test::poisoned(out_shape, TensorOptions(kInt64));
          Tensor ig = test::poisoned(out_shape, TensorOptions(kInt64, gpu()));
          topk_rows_kernel(kCPU, vc, ic, in, k, largest);
          topk_rows_kernel(gpu(), vg, ig, in.to(gpu()), k, largest);
          check_equal(vg, vc, "values");
          check_equal(ig, ic, "indices");
        }
      }
    }
  }
}

TEST_CASE("cuda parity: sort, topk and argsort along a middle dimension with autograd", "[cuda][sort][autograd]") {
  GNDET_REQUIRE_CUDA();
  // Distinct values, so that the gradient routing does not depend on tie order.
  const Tensor xc = test::random_nonzero({3, 40, 5}, 6200) + arange(0, 600, 1, kFloat32).reshape({3, 40, 5}) * 1e-3;
  Tensor x1 = xc.clone().set_requires_grad();
  Tensor x2 = xc.to(gpu()).set_requires_grad();
  auto f = [](const Tensor& x) {
    const ValuesIndices s = sort(x, 1, true);
    const ValuesIndices t = topk(x, 7, 1, false);
    return sum(s.values * arange(0, 40, 1, TensorOptions(kFloat32, x.device())).reshape({1, 40, 1})) +
           sum(t.values * t.values);
  };
  const Tensor y1 = f(x1), y2 = f(x2);
  check_close(y2, y1, 1e-3, 1e-5, "forward");  // sums of 600 products of size ~40: 1e-5 relative
  y1.backward();
  y2.backward();
  check_close(x2.grad(), x1.grad(), 1e-6, 1e-6, "grad");  // each grad element is one product
  check_equal(argsort(x2, 1).cpu(), argsort(x1, 1));
  check_equal(topk(x2, 3, -1).indices.cpu(), topk(x1, 3, -1).indices);
}

TEST_CASE("cuda: sort and topk of empty rows, k = 0 and 0-dim tensors", "[cuda][sort]") {
  GNDET_REQUIRE_CUDA();
  const Tensor e = zeros({0, 4}, gpu());
  CHECK(sort(e, 1).values.shape() == Shape{0, 4});
  CHECK(topk(ones({3, 4}, gpu()), 0).values.shape() == Shape{3, 0});
  const Tensor s = full({}, 2.5, gpu());
  CHECK(sort(s).values.item<float>() == 2.5f);
  CHECK(sort(s).indices.item<int64_t>() == 0);
  CHECK(sort(zeros({5, 0}, gpu()), 1).values.shape() == Shape{5, 0});
}
