// CUDA parity of the reduction kernels (sum over rows / columns, variance, max / min with their
// index) on poisoned outputs, covering the warp-per-row, block-per-row and chunked paths, and of
// the reduction ops with autograd.
//
// Tolerances: float32 sums accumulate in float on the GPU (tree order) and in double on the CPU;
// the error of such a sum is below ~R * 6e-8 * sum|x| for the sequential part and far less for
// the tree, so |gpu - cpu| <= 2e-6 * sum|x| per row (computed from the data) plus a tiny absolute
// term. float64 1e-12 of sum|x|. Integers, max / min and their indices are exact.
#include <cmath>

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::check_equal;
using test::gpu;

namespace {

// Runs a (values-only) row kernel on both devices and returns (gpu, cpu) results.
template <class Run>
std::pair<Tensor, Tensor> run_both(const Tensor& in, const Shape& out_shape, Run run) {
  Tensor out_cpu = test::poisoned(out_shape, TensorOptions(in.dtype()));
  Tensor out_gpu = test::poisoned(out_shape, TensorOptions(in.dtype(), gpu()));
  run(kCPU, out_cpu, in);
  run(gpu(), out_gpu, in.to(gpu()));
  return {out_gpu, out_cpu};
}

// Per-output bound for float sums: rel * sum |x| over the reduced elements.
void check_sum(const Tensor& got, const Tensor& want, const Tensor& abs_sums, double rel) {
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>(), s = abs_sums.to_vector<double>();
  REQUIRE(g.size() == w.size());
  int64_t bad = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    if (!(std::abs(g[i] - w[i]) <= rel * s[i] + 1e-30)) {
      if (bad++ < 5) UNSCOPED_INFO("[" << i << "] got " << g[i] << ", want " << w[i] << ", sum|x| " << s[i]);
    }
  }
  CHECK(bad == 0);
}

double sum_tolerance(DType t) { return t == kFloat32 ? 2e-6 : 1e-12; }

}  // namespace

TEST_CASE("cuda parity: sum over rows on every numeric dtype and every path", "[cuda][reduce]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  // (M, R): warp per row (R <= 1024), block per row, chunked (few long rows), one huge row.
  const std::vector<Shape> shapes = {{1, 1}, {7, 3}, {1000, 33}, {3, 1025}, {300, 5000}, {2, 100000}, {1, 3000001}};
  uint64_t seed = 4000;
  for (const DType dt : {kFloat32, kFloat64, kInt64, kInt32, kUInt8}) {
    for (const Shape& s : shapes) {
      if (dt != kFloat32 && s[0] * s[1] > 1000000) continue;  // the large cases once
      // uint8 sums must fit in uint8: converting a larger double to uint8 is undefined (the CPU
      // wraps, the GPU saturates). The op layer sums uint8 as int64 and never gets there.
      if (dt == kUInt8 && s[1] * 3 > 255) continue;
      INFO(dtype_name(dt) << " " << shape_str(s));
      const Tensor in = test::random_nonzero(s, seed++, dt, 0.25, dt == kUInt8 ? 3 : 2.0);
      const double scale = is_floating(dt) ? 0.5 : 1.0;
      auto [g, c] = run_both(in, {s[0]}, [&](Device d, Tensor& out, const Tensor& x) { sum_rows_kernel(d, out, x, scale); });
      if (is_floating(dt)) {
        check_sum(g, c, sum(abs(in.to(kFloat64)), {1}) * scale, sum_tolerance(dt));
      } else {
        check_equal(g, c);  // integer sums are exact (uint8 wraps alike on both)
      }
    }
  }
}

TEST_CASE("cuda parity: sum over columns on every numeric dtype and every path", "[cuda][reduce]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  // (R, N): one tile, many columns, N = 1 (row path), chunked along R, few columns and long R.
  const std::vector<Shape> shapes = {{1, 5}, {9, 70}, {513, 4000}, {100000, 1}, {20000, 33}, {3000, 2}};
  uint64_t seed = 4100;
  for (const DType dt : {kFloat32, kFloat64, kInt64, kInt32, kUInt8}) {
    for (const Shape& s : shapes) {
      if (dt == kUInt8 && s[0] * 3 > 255) continue;  // see the row test
      INFO(dtype_name(dt) << " " << shape_str(s));
      const Tensor in = test::random_nonzero(s, seed++, dt, 0.25, dt == kUInt8 ? 3 : 2.0);
      auto [g, c] = run_both(in, {s[1]}, [&](Device d, Tensor& out, const Tensor& x) { sum_cols_kernel(d, out, x, 1.0); });
      if (is_floating(dt)) {
        check_sum(g, c, sum(abs(in.to(kFloat64)), {0}), sum_tolerance(dt));
      } else {
        check_equal(g, c);
      }
    }
  }
}

TEST_CASE("cuda parity: variance over rows, biased and unbiased", "[cuda][reduce]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 4200;
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const Shape& s : std::vector<Shape>{{5, 2}, {300, 77}, {4, 20000}}) {
      for (const double ddof : {0.0, 1.0}) {
        INFO(dtype_name(dt) << " " << shape_str(s) << " ddof " << ddof);
        // An offset of 3 makes the two-pass algorithm matter (E[x^2] - E[x]^2 would cancel).
        const Tensor in = test::random_nonzero(s, seed++, dt) + 3.0;
        auto [g, c] = run_both(in, {s[0]}, [&](Device d, Tensor& out, const Tensor& x) { var_rows_kernel(d, out, x, ddof); });
        // float32 mean and squares in float: 1e-5 relative on a variance of ~1.5.
        check_close(g, c, 0.0, dt == kFloat32 ? 1e-5 : 1e-12);
      }
    }
  }
}

TEST_CASE("cuda parity: max and min pick the first extremum, NaN first, on every numeric dtype", "[cuda][reduce]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 4300;
  for (const DType dt : {kFloat32, kFloat64, kInt64, kInt32, kUInt8}) {
    for (const Shape& s : std::vector<Shape>{{1, 1}, {50, 7}, {64, 1000}, {3, 4097}}) {
      for (const bool is_max : {true, false}) {
        INFO(dtype_name(dt) << " " << shape_str(s) << (is_max ? " max" : " min"));
        // Few distinct values: many ties, so "the first index" is tested everywhere.
        Tensor in = test::random_ints(s, seed++, 1, 6, dt);
        if (is_floating(dt)) {
          // Row 0 of the larger cases gets two NaNs; the first must win.
          if (s[1] > 10) {
            in.select(0, 0).narrow(0, s[1] / 2, 1).fill_(NAN);
            in.select(0, 0).narrow(0, s[1] - 1, 1).fill_(NAN);
          }
        }
        Tensor v_cpu = test::poisoned({s[0]}, TensorOptions(dt)), v_gpu = test::poisoned({s[0]}, TensorOptions(dt, gpu()));
        Tensor i_cpu = test::poisoned({s[0]}, TensorOptions(kInt64)), i_gpu = test::poisoned({s[0]}, TensorOptions(kInt64, gpu()));
        extremum_rows_kernel(kCPU, v_cpu, i_cpu, in, is_max);
        extremum_rows_kernel(gpu(), v_gpu, i_gpu, in.to(gpu()), is_max);
        check_equal(v_gpu, v_cpu, "values");
        check_equal(i_gpu, i_cpu, "indices");
      }
    }
  }
}

TEST_CASE("cuda parity: reduction ops with autograd on non-contiguous inputs", "[cuda][reduce][autograd]") {
  GNDET_REQUIRE_CUDA();
  const Tensor base = test::random_nonzero({6, 5, 4}, 4400);
  const Tensor distinct = base + arange(0, 120, 1, kFloat32).reshape({6, 5, 4}) * 0.01;  // no ties for max / min
  auto f = [](const Tensor& x) {
    const Tensor t = x.permute({2, 0, 1});  // (4, 6, 5) strided
    Tensor r = sum(t, {0, 2}) + sum(mean(t, {1}, true)) + sum(var(t, {2})) * 0.5 + var(t, {}, false);
    r = r + sum(max(t, 1).values) - mean(min(t, 2, true).values) + max(t) - min(x);
    return r + sum(sum(x, {0}));  // leading dims of a contiguous tensor: the column path
  };
  Tensor x1 = distinct.clone().set_requires_grad();
  Tensor x2 = distinct.to(gpu()).set_requires_grad();
  const Tensor y1 = f(x1), y2 = f(x2);
  check_close(y2, y1, 1e-5, 1e-5, "forward");
  const Tensor g = test::random_nonzero(y1.shape(), 4401);
  y1.backward(g);
  y2.backward(g.to(gpu()));
  check_close(x2.grad(), x1.grad(), 1e-5, 1e-5, "grad");
  CHECK(argmax(x2, 1).cpu().to_vector<int64_t>() == argmax(x1, 1).to_vector<int64_t>());
  CHECK(argmin(x2, 0).cpu().to_vector<int64_t>() == argmin(x1, 0).to_vector<int64_t>());
}

TEST_CASE("cuda: reductions of empty tensors and over empty dimensions", "[cuda][reduce]") {
  GNDET_REQUIRE_CUDA();
  const Tensor e = zeros({0, 3}, gpu());
  check_equal(sum(e, {0}).cpu(), zeros({3}));  // over an empty dim: zeros
  CHECK(sum(e, {1}).shape() == Shape{0});
  CHECK(max(e, 1).values.shape() == Shape{0});
  CHECK(sum(zeros({0}, gpu())).item<float>() == 0.0f);
  CHECK_THROWS_WITH(max(e, 0), Catch::Contains("empty"));
}
