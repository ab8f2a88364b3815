// Pooling, resizing, normalisation and losses: hand-computed cases (values checked against
// PyTorch's documented semantics), naive double-loop references, and error messages.
#include <cmath>
#include <limits>
#include <vector>

#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/resize.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VD = std::vector<double>;

namespace {

Tensor arange_image(int64_t h, int64_t w) { return arange(0.0, static_cast<double>(h * w), 1.0, kFloat32).reshape({1, 1, h, w}); }

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

double max_diff(const VD& a, const VD& b) {
  REQUIRE(a.size() == b.size());
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

}  // namespace

TEST_CASE("max_pool2d by hand: stride, ceil_mode, kernel 1 stride 2, padding, NaN", "[layers]") {
  CHECK(max_pool2d(arange_image(4, 4), {2, 2}, {2, 2}).to_vector<float>() == V{5, 7, 13, 15});
  // 5x5 with 2x2/2: floor mode drops the last row and column, ceil mode keeps a partial window.
  CHECK(max_pool2d(arange_image(5, 5), {2, 2}, {2, 2}).to_vector<float>() == V{6, 8, 16, 18});
  CHECK(max_pool2d(arange_image(5, 5), {2, 2}, {2, 2}, {0, 0}, true).to_vector<float>() ==
        V{6, 8, 9, 16, 18, 19, 21, 23, 24});
  // FPN P6: every other pixel.
  CHECK(max_pool2d(arange_image(5, 5), {1, 1}, {2, 2}).to_vector<float>() == V{0, 2, 4, 10, 12, 14, 20, 22, 24});
  // Padding never wins, even over negative values.
  const Tensor negative = (arange_image(3, 3) + 1.0) * -1.0;
  CHECK(max_pool2d(negative, {3, 3}, {1, 1}, {1, 1}).to_vector<float>() == V{-1, -1, -2, -1, -1, -2, -4, -4, -5});
  // ceil_mode drops a window that would start in the right padding: 5 -> 3, as PyTorch (ResNet stem).
  CHECK(max_pool2d(zeros({1, 1, 5, 5}), {3, 3}, {2, 2}, {1, 1}, true).shape() == Shape{1, 1, 3, 3});
  CHECK(max_pool2d(zeros({1, 1, 6, 6}), {2, 2}, {2, 2}, {1, 1}, true).shape() == Shape{1, 1, 4, 4});
  Tensor with_nan = arange_image(2, 2);
  with_nan.data<float>()[1] = std::numeric_limits<float>::quiet_NaN();
  CHECK(std::isnan(max_pool2d(with_nan, {2, 2}, {2, 2}).item<float>()));
  // The gradient goes to each window's winner only.
  Tensor x = arange(0.0, 16.0, 1.0, kFloat64).reshape({1, 1, 4, 4}).detach().set_requires_grad();
  sum(max_pool2d(x, {2, 2}, {2, 2})).backward();
  CHECK(x.grad().to_vector<double>() == VD{0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 1});
}

TEST_CASE("upsample_nearest and interpolate_bilinear match PyTorch's values", "[layers]") {
  const Tensor x = from_data<float>({1, 2, 3, 4}, {1, 1, 2, 2});
  CHECK(upsample_nearest(x, 2).to_vector<float>() == V{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  // Size (3, 3): src = floor(dst * 2 / 3) = 0, 0, 1.
  CHECK(upsample_nearest(x, 3, 3).to_vector<float>() == V{1, 1, 2, 1, 1, 2, 3, 3, 4});
  CHECK(upsample_nearest(arange_image(4, 4), 2, 2).to_vector<float>() == V{0, 2, 8, 10});
  CHECK(upsample_nearest(x, 1, 3).shape() == Shape{1, 1, 1, 3});

  // F.interpolate(x, size=(4, 4), mode='bilinear', align_corners=False)
  CHECK(interpolate_bilinear(x, 4, 4).to_vector<float>() ==
        V{1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4});
  CHECK(interpolate_bilinear(x, 3, 3, true).to_vector<float>() == V{1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4});
  CHECK(interpolate_bilinear(arange_image(4, 4), 2, 2).to_vector<float>() == V{2.5, 4.5, 10.5, 12.5});
  CHECK(interpolate_bilinear(x, 1, 1, true).to_vector<float>() == V{1});  // out == 1: the first pixel
  // The backward spreads each output gradient over its taps: total mass is conserved.
  Tensor xg = from_data<double>({1, 2, 3, 4}, {1, 1, 2, 2}).set_requires_grad();
  sum(interpolate_bilinear(xg, 5, 3)).backward();
  CHECK(sum(xg.grad()).item<double>() == Approx(15.0).epsilon(1e-14));
}

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
    CHECK(max_diff(group_norm(x, c.G, w, b).to_vector<double>(), ref) < 1e-12);
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
  CHECK(max_diff(group_norm(x, 4, Tensor(), Tensor()).to_vector<double>(), ref) < 2e-4);

  // The statistics themselves, on a spread of 0.01 around 1000: float32 sums of the raw values
  // would be off in the third digit; the kernel's shifted chunks keep rstd to float precision
  // (stored as float32: 6e-8 relative; 1e-5 leaves room for the 256-value float chunks).
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

  Tensor empty_x = zeros({0, 4, 3, 3}).set_requires_grad();
  Tensor w = ones({4}).set_requires_grad();
  const Tensor y_empty = group_norm(empty_x, 2, w, Tensor());
  CHECK(y_empty.shape() == Shape{0, 4, 3, 3});
  sum(y_empty).backward();
  CHECK(w.grad().to_vector<float>() == V{0, 0, 0, 0});
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
  CHECK(max_diff(out, ref) < 1e-13);  // one formula in double
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

TEST_CASE("cross_entropy by hand, with class weights and ignore_index", "[layers]") {
  const Tensor logits = from_data<double>({1, 2, 3, 1, 1, 1, 5, 0, 0}, {3, 3});
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;  // 0.4076
  const double l1 = std::log(3.0);
  const double l2 = std::log(std::exp(5.0) + 2.0) - 0.0;  // target 1 (logit 0)
  CHECK(cross_entropy(logits, from_data<int64_t>({2, 0, 1})).item<double>() == Approx((l0 + l1 + l2) / 3).epsilon(1e-14));
  CHECK(cross_entropy(logits, from_data<int64_t>({2, 0, 1}), Tensor(), -100, Reduction::Sum).item<double>() ==
        Approx(l0 + l1 + l2).epsilon(1e-14));
  // Weighted mean over the non-ignored samples: (3 * l0 + 1 * l1) / (3 + 1).
  const Tensor cw = from_data<double>({1, 2, 3});
  CHECK(cross_entropy(logits, from_data<int64_t>({2, 0, -100}), cw).item<double>() ==
        Approx((3 * l0 + l1) / 4).epsilon(1e-14));
  const Tensor none = cross_entropy(logits, from_data<int64_t>({2, 7, 1}), cw, 7, Reduction::None);
  CHECK(none.to_vector<double>()[0] == Approx(3 * l0).epsilon(1e-14));
  CHECK(none.to_vector<double>()[1] == 0.0);
  // Extreme logits stay finite.
  CHECK(std::isfinite(cross_entropy(from_data<float>({1000, -1000}, {1, 2}), from_data<int64_t>({1})).item<float>()));
  CHECK_THROWS_WITH(cross_entropy(logits, from_data<int64_t>({2, 3, 0})),
                    Catch::Contains("cross_entropy: target 3 of sample 1 is outside [0, 3)"));
  CHECK_THROWS_WITH(cross_entropy(logits, from_data<int64_t>({2, 0})), Catch::Contains("expected target (3)"));
}

TEST_CASE("binary_cross_entropy_with_logits, l1 and smooth_l1 by hand", "[layers]") {
  const Tensor x = from_data<double>({0, 100, -100, 2});
  const Tensor t = from_data<double>({1, 0, 0, 1});
  const VD bce = binary_cross_entropy_with_logits(x, t, Tensor(), Reduction::None).to_vector<double>();
  CHECK(bce[0] == Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(bce[1] == 100.0);                    // no overflow in exp(100)
  CHECK(bce[2] == Approx(3.7200759760208e-44).epsilon(1e-12));
  CHECK(bce[3] == Approx(0.12692801104297263).epsilon(1e-15));
  const Tensor w = from_data<double>({2, 0, 0, 1});
  CHECK(binary_cross_entropy_with_logits(x, t, w).item<double>() ==
        Approx((2 * std::log(2.0) + 0.12692801104297263) / 4).epsilon(1e-14));

  const Tensor p = from_data<double>({0.5, -2, 0}), z = zeros({3}, kFloat64);
  CHECK(smooth_l1_loss(p, z, 1.0, Reduction::None).to_vector<double>() == VD{0.125, 1.5, 0});
  CHECK(l1_loss(p, z, Reduction::None).to_vector<double>() == VD{0.5, 2, 0});
  CHECK(l1_loss(p, z).item<double>() == Approx(2.5 / 3).epsilon(1e-15));
  CHECK(smooth_l1_loss(p, z, 1.0, Reduction::Sum).item<double>() == 1.625);
  CHECK(std::isnan(l1_loss(zeros({0}), zeros({0})).item<float>()));  // mean of nothing, as PyTorch
  CHECK_THROWS_WITH(l1_loss(zeros({2, 3}), zeros({3, 2})),
                    Catch::Contains("l1_loss: pred (2, 3) and target (3, 2) must have the same shape"));
}

TEST_CASE("pool, resize and norm errors name the op and the shapes", "[layers][errors]") {
  CHECK_THROWS_WITH(max_pool2d(zeros({1, 1, 4, 4}), {2, 2}, {2, 2}, {2, 2}),
                    Catch::Contains("max_pool2d: padding (2, 2) must be at most half the kernel (2, 2)"));
  CHECK_THROWS_WITH(upsample_nearest(zeros({2, 3}), 2), Catch::Contains("upsample_nearest: expected input (N, C, H, W)"));
  CHECK_THROWS_WITH(group_norm(zeros({2, 6, 3}), 4, Tensor(), Tensor()),
                    Catch::Contains("group_norm: channels 6 of input (2, 6, 3) are not divisible by num_groups 4"));
  CHECK_THROWS_WITH(group_norm(zeros({2, 6, 3}), 3, zeros({4}), Tensor()),
                    Catch::Contains("group_norm: expected weight (6)"));
  CHECK_THROWS_WITH(frozen_batch_norm(zeros({2, 3, 4}), ones({3}), zeros({3}), zeros({2}), ones({3})),
                    Catch::Contains("frozen_batch_norm: expected running_mean (3)"));
}
