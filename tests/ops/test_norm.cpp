// GroupNorm, weight standardization and frozen batch norm: a naive double reference, hand-computed
// cases (mmcv's formulas), and error messages.
#include <algorithm>
#include <cmath>
#include <vector>

#include <omp.h>

#include "ops/elementwise.h"
#include "ops/norm.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VD = std::vector<double>;

namespace {

// GroupNorm by definition, in double: statistics of each (n, g) block, biased variance.
VD naive_group_norm(const VD& x, int64_t N, int64_t C, int64_t S, int64_t G, const VD& w, const VD& b, double eps) {
  VD y(x.size());
  const int64_t Cg = C / G;
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t g = 0; g < G; ++g) {
      const double* blk = x.data() + (n * C + g * Cg) * S;
      double mean = 0.0, var = 0.0;
      for (int64_t i = 0; i < Cg * S; ++i) mean += blk[i];
      mean /= static_cast<double>(Cg * S);
      for (int64_t i = 0; i < Cg * S; ++i) var += (blk[i] - mean) * (blk[i] - mean);
      var /= static_cast<double>(Cg * S);
      for (int64_t c = 0; c < Cg; ++c) {
        const int64_t ch = g * Cg + c;
        for (int64_t s = 0; s < S; ++s) {
          const int64_t i = (n * C + ch) * S + s;
          y[i] = (x[i] - mean) / std::sqrt(var + eps) * (w.empty() ? 1.0 : w[ch]) + (b.empty() ? 0.0 : b[ch]);
        }
      }
    }
  }
  return y;
}

}  // namespace

TEST_CASE("group_norm matches the definition in double, for G in {1, 2, 32}", "[layers]") {
  struct Case {
    Shape shape;
    int64_t G;
  };
  const Case cases[] = {{{2, 6, 3, 4}, 1}, {{2, 6, 3, 4}, 2}, {{3, 64, 2, 3}, 32}, {{2, 8, 1, 1}, 2}, {{1, 4, 7}, 4}};
  Generator gen(11);
  for (const Case& c : cases) {
    INFO("shape " << shape_str(c.shape) << " G " << c.G);
    const int64_t N = c.shape[0], C = c.shape[1], S = shape_numel(c.shape) / (N * C);
    const Tensor x = randn(c.shape, gen, kFloat64) * 3.0 + 2.0;
    const Tensor w = randn({C}, gen, kFloat64), b = randn({C}, gen, kFloat64);
    const VD ref = naive_group_norm(x.to_vector<double>(), N, C, S, c.G, w.to_vector<double>(), b.to_vector<double>(), 1e-5);
    // Same formula in double, only the summation order differs.
    CHECK(test::max_abs_diff(group_norm(x, c.G, w, b).to_vector<double>(), ref) < 1e-12);
  }
  // C == G with one value per group: the variance is 0, so the output is the bias.
  const Tensor one = randn({2, 4, 1, 1}, gen, kFloat64), bias = from_data<double>({1, 2, 3, 4});
  CHECK(group_norm(one, 4, ones({4}, kFloat64), bias).to_vector<double>() == VD{1, 2, 3, 4, 1, 2, 3, 4});
}

TEST_CASE("group_norm in float32 stays accurate on a large mean, and handles N == 0", "[layers]") {
  Generator gen(12);
  const Tensor x = randn({2, 8, 16, 16}, gen, kFloat32) + 1000.0f;
  const VD ref = naive_group_norm(x.to_vector<double>(), 2, 8, 256, 4, {}, {}, 1e-5);
  // The float32 mean of values near 1000 is off by ~3e-5; normalised values inherit that, no more
  // (E[x^2] - E[x]^2 in float would lose everything here).
  CHECK(test::max_abs_diff(group_norm(x, 4, Tensor(), Tensor()).to_vector<double>(), ref) < 2e-4);

  // The statistics themselves, on a spread of 0.01 around 1000: float32 sums of the raw values
  // would be off in the third digit; the kernel's shifted chunks keep rstd to float precision
  // (stored as float32: 6e-8 relative; 1e-5 leaves room for the 1024-value float chunks).
  const Tensor tight = (randn({2, 8, 400}, gen, kFloat64) * 0.01 + 1000.0).to(kFloat32);
  Tensor y = empty({2, 8, 400}), mean = empty({2, 2}), rstd = empty({2, 2});
  group_norm_kernel(kCPU, y, mean, rstd, tight, Tensor(), Tensor(), 2, 0.0);
  const VD tv = tight.to_vector<double>(), rv = rstd.to_vector<double>();
  for (int64_t blk = 0; blk < 4; ++blk) {
    double m = 0.0, v = 0.0;
    for (int64_t i = 0; i < 1600; ++i) m += tv[blk * 1600 + i] / 1600.0;
    for (int64_t i = 0; i < 1600; ++i) v += (tv[blk * 1600 + i] - m) * (tv[blk * 1600 + i] - m) / 1600.0;
    CHECK(rv[blk] == Approx(1.0 / std::sqrt(v)).epsilon(1e-5));
    CHECK(mean.to_vector<double>()[blk] == Approx(m).epsilon(1e-7));
  }

  // float32 and float64 gradients agree (float32 rounding over 512-value sums: ~1e-6).
  const Tensor xd = randn({2, 8, 4, 4}, gen, kFloat64), wd = randn({8}, gen, kFloat64), dy = randn({2, 8, 4, 4}, gen, kFloat64);
  Tensor x64 = xd.detach().set_requires_grad(), w64 = wd.detach().set_requires_grad();
  Tensor x32 = xd.to(kFloat32).detach().set_requires_grad(), w32 = wd.to(kFloat32).detach().set_requires_grad();
  sum(group_norm(x64, 2, w64, Tensor()) * dy).backward();
  sum(group_norm(x32, 2, w32, Tensor()) * dy.to(kFloat32)).backward();
  CHECK(test::max_abs_diff(x64.grad(), x32.grad()) < 1e-4);
  CHECK(test::max_abs_diff(w64.grad(), w32.grad()) < 1e-4);

  // Empty maps with samples (N > 0, no positions): nothing to normalise, no division by the map size.
  Tensor no_positions = zeros({2, 4, 0, 3}).set_requires_grad();
  Tensor w0 = ones({4}).set_requires_grad();
  const Tensor y_none = group_norm_relu(no_positions, 2, w0, zeros({4}));
  CHECK(y_none.shape() == Shape{2, 4, 0, 3});
  sum(y_none).backward();
  CHECK(no_positions.grad().shape() == Shape{2, 4, 0, 3});
  CHECK(w0.grad().to_vector<float>() == V{0, 0, 0, 0});

  Tensor empty_x = zeros({0, 4, 3, 3}).set_requires_grad();
  Tensor w = ones({4}).set_requires_grad();
  const Tensor y_empty = group_norm(empty_x, 2, w, Tensor());
  CHECK(y_empty.shape() == Shape{0, 4, 3, 3});
  sum(y_empty).backward();
  CHECK(w.grad().to_vector<float>() == V{0, 0, 0, 0});
}

// Restores the OpenMP thread count when a test that changes it ends (or fails).
struct ThreadCountGuard {
  int saved = omp_get_max_threads();
  ~ThreadCountGuard() { omp_set_num_threads(saved); }
};

TEST_CASE("group_norm's large groups: shared between threads, streamed, the same numbers bit for bit", "[layers]") {
  // ops/cpu/norm.cpp runs a group above 1 MB with its slabs shared between the threads, and
  // writes outputs of 32 MB and more (y, and dx in the backward) with streaming stores; statistics are merged per slab in
  // slab order either way. So: the same bits with 1 and 2 threads, the same bits
  // for the first sample alone (16 MB: not streamed) as inside the streamed pair, and close to the
  // definition in double.
  ThreadCountGuard guard;
  Generator gen(31);
  const int64_t C = 8, S = 524291;  // S odd: rows start off the 64-byte lines, as in real layers
  const Tensor x = randn({2, C, S}, gen, kFloat32) * 3.0f + 0.5f;
  const Tensor w = randn({C}, gen, kFloat32), b = randn({C}, gen, kFloat32), dy = randn({2, C, S}, gen, kFloat32);
  for (const int64_t G : {int64_t{2}, int64_t{8}}) {  // groups of 8 MB and of 2 MB
    CAPTURE(G);
    auto run = [&](const Tensor& in, const Tensor& grad, bool relu) {
      Tensor y = empty(in.shape()), mean = empty({in.size(0), G}), rstd = empty({in.size(0), G});
      if (relu) {
        group_norm_relu_kernel(kCPU, y, mean, rstd, in, w, b, G, 1e-5);
      } else {
        group_norm_kernel(kCPU, y, mean, rstd, in, w, b, G, 1e-5);
      }
      Tensor dx = empty(in.shape()), dw = empty({C}), db = empty({C});
      group_norm_backward_kernel(kCPU, dx, dw, db, grad, in, mean, rstd, w, G);
      return std::vector<Tensor>{y, mean, rstd, dx, dw, db};
    };
    omp_set_num_threads(2);
    const std::vector<Tensor> two = run(x, dy, false);
    omp_set_num_threads(1);
    const std::vector<Tensor> one = run(x, dy, false);
    omp_set_num_threads(2);
    for (size_t i = 0; i < two.size(); ++i) CHECK(test::max_abs_diff(two[i], one[i]) == 0.0);

    const Tensor x0 = x.slice(0, 0, 1).contiguous(), dy0 = dy.slice(0, 0, 1).contiguous();
    const std::vector<Tensor> first = run(x0, dy0, false);
    CHECK(test::max_abs_diff(first[0], two[0].slice(0, 0, 1)) == 0.0);  // y
    CHECK(test::max_abs_diff(first[3], two[3].slice(0, 0, 1)) == 0.0);  // dx
    // group_norm_relu streamed: max(0, y) of the same y.
    const Tensor relu_y = run(x, dy, true)[0];
    CHECK(test::max_abs_diff(relu_y, relu(two[0])) == 0.0);

    // Against the definition in double: float32 rounding of normalised values of order 1 (the
    // statistics are merged in double; 1e-5 is ~100 float ulps at 1).
    const VD ref = naive_group_norm(x0.to_vector<double>(), 1, C, S, G, w.to_vector<double>(), b.to_vector<double>(), 1e-5);
    CHECK(test::max_abs_diff(first[0].to_vector<double>(), ref) < 1e-5);
  }
}

// WS feeds every product of its convolution, so its float32 output should be the exact value
// rounded once. Rows with a mean well away from zero (as trained weights have) are where float
// sums of the statistics went wrong: the mean's error moved the standardised weights near zero by
// up to 10^4 ulps (found with bench/float32_accuracy on X-101 GN+WS).
TEST_CASE("group_norm_relu is relu(group_norm) bit for bit, forward and backward", "[layers]") {
  // The fused op writes max(0, y) with the same arithmetic as group_norm's y, and its backward
  // masks dy by the output before the same GroupNorm backward: float32 results must be identical.
  Generator gen(31);
  for (const Shape& shape : {Shape{2, 64, 9, 7}, Shape{3, 8, 1, 1}, Shape{1, 32, 40, 40}}) {
    INFO("shape " << shape_str(shape));
    const int64_t C = shape[1];
    Tensor x1 = randn(shape, gen).set_requires_grad(), w1 = rand({C}, gen).set_requires_grad(), b1 = randn({C}, gen).set_requires_grad();
    Tensor x2 = x1.detach().clone().set_requires_grad(), w2 = w1.detach().clone().set_requires_grad(),
           b2 = b1.detach().clone().set_requires_grad();
    const Tensor fused = group_norm_relu(x1, 4, w1, b1), pair = relu(group_norm(x2, 4, w2, b2));
    CHECK(fused.to_vector<float>() == pair.to_vector<float>());
    CHECK(min(fused).item<double>() == 0.0);  // the ReLU did clip
    const Tensor r = randn(shape, gen);
    sum(fused * r).backward();
    sum(pair * r).backward();
    CHECK(x1.grad().to_vector<float>() == x2.grad().to_vector<float>());
    CHECK(w1.grad().to_vector<float>() == w2.grad().to_vector<float>());
    CHECK(b1.grad().to_vector<float>() == b2.grad().to_vector<float>());
  }
}

TEST_CASE("weight_standardization in float32 is the float64 result rounded once", "[layers]") {
  Generator gen(12);
  for (const Shape& shape : {Shape{64, 64, 1, 1}, Shape{32, 4, 3, 3}, Shape{16, 512, 3, 3}}) {
    CAPTURE(shape_str(shape));
    const Tensor w = add(mul(randn(shape, gen, kFloat64), 0.05), 0.3).to(kFloat32);  // mean 0.3, spread 0.05
    const std::vector<float> got = weight_standardization(w).to_vector<float>();
    const std::vector<double> exact = weight_standardization(w.to(kFloat64)).to_vector<double>();
    double worst = 0;  // in units in the last place of the float32 result
    for (size_t i = 0; i < got.size(); ++i) {
      const double ulp = std::nextafter(std::abs(got[i]), INFINITY) - std::abs(got[i]);
      worst = std::max(worst, std::abs(got[i] - exact[i]) / ulp);
    }
    // Rounding once is at most half an ulp; 0.51 allows the double statistics' own ~1e-16 error.
    CHECK(worst <= 0.51);
  }
}

TEST_CASE("weight_standardization follows mmcv's ConvWS2d formula", "[layers]") {
  Generator gen(13);
  const Tensor w = randn({3, 2, 3, 3}, gen, kFloat64) * 0.2 + 0.1;
  const VD v = w.to_vector<double>(), out = weight_standardization(w).to_vector<double>();
  VD ref(v.size());
  for (int64_t o = 0; o < 3; ++o) {
    double mean = 0.0, ss = 0.0;
    for (int64_t i = 0; i < 18; ++i) mean += v[o * 18 + i] / 18.0;
    for (int64_t i = 0; i < 18; ++i) ss += (v[o * 18 + i] - mean) * (v[o * 18 + i] - mean);
    const double std_unbiased = std::sqrt(ss / 17.0);
    for (int64_t i = 0; i < 18; ++i) ref[o * 18 + i] = (v[o * 18 + i] - mean) / (std_unbiased + 1e-5);
  }
  CHECK(test::max_abs_diff(out, ref) < 1e-13);  // one formula in double
  // By hand: {1, 3} has mean 2 and unbiased std sqrt(2).
  const double s = std::sqrt(2.0) + 1e-5;
  CHECK(weight_standardization(from_data<double>({1, 3}, {1, 2, 1, 1})).to_vector<double>() == VD{-1 / s, 1 / s});
  CHECK_THROWS_WITH(weight_standardization(zeros({4, 1, 1, 1})),
                    Catch::Contains("weight_standardization") && Catch::Contains("at least 2"));
}

TEST_CASE("frozen_batch_norm by hand; buffers get no gradient", "[layers]") {
  const Tensor x = from_data<float>({1, 2, 3, 4}, {1, 2, 2, 1});
  // channel 0: (x - 1) / sqrt(4) * 2 + 1 = x; channel 1: (x - 0) / sqrt(0.25) * 1 + 0 = 2x.
  const Tensor w = from_data<float>({2, 1}), b = from_data<float>({1, 0});
  const Tensor mean = from_data<float>({1, 0}), var = from_data<float>({4, 0.25});
  CHECK(frozen_batch_norm(x, w, b, mean, var, 0.0).to_vector<float>() == V{1, 2, 6, 8});
  Tensor xg = x.to(kFloat64).detach().set_requires_grad();
  sum(frozen_batch_norm(xg, w.to(kFloat64), b.to(kFloat64), mean.to(kFloat64), var.to(kFloat64), 0.0)).backward();
  CHECK(xg.grad().to_vector<double>() == VD{1, 1, 2, 2});
}

TEST_CASE("norm errors name the op and the shapes", "[layers][errors]") {
  CHECK_THROWS_WITH(group_norm(zeros({2, 6, 3}), 4, Tensor(), Tensor()),
                    Catch::Contains("group_norm: channels 6 of input (2, 6, 3) are not divisible by num_groups 4"));
  CHECK_THROWS_WITH(group_norm(zeros({2, 6, 3}), 3, zeros({4}), Tensor()),
                    Catch::Contains("group_norm: expected weight (6)"));
  CHECK_THROWS_WITH(frozen_batch_norm(zeros({2, 3, 4}), ones({3}), zeros({3}), zeros({2}), ones({3})),
                    Catch::Contains("frozen_batch_norm: expected running_mean (3)"));
}
