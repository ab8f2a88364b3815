// max_pool2d on hand-computed cases (PyTorch's documented semantics), and its errors.
#include <cmath>
#include <limits>
#include <vector>

#include "ops/elementwise.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VD = std::vector<double>;

namespace {

Tensor arange_image(int64_t h, int64_t w) { return arange(0.0, static_cast<double>(h * w), 1.0, kFloat32).reshape({1, 1, h, w}); }

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

TEST_CASE("max_pool2d 3x3 stride 2 on wide rows (the stem's) equals the float64 loop: ties, NaN, -inf", "[layers]") {
  // float32 takes a vectorised path for 3 x 3 / 2 windows inside wide rows; float64 the plain loop.
  // Small integers make ties common (the first maximum must win, as in the loop: the gradient shows
  // which one), a few NaN must win and stay, and an all -inf window keeps its first element.
  const int64_t N = 2, C = 3, H = 9, W = 83;
  std::vector<double> v(N * C * H * W);
  uint32_t state = 12345;
  for (double& e : v) {
    state = state * 1664525u + 1013904223u;
    e = static_cast<double>((state >> 24) % 5);
  }
  v[1 * W + 40] = std::numeric_limits<double>::quiet_NaN();
  v[H * W + 4 * W + 17] = std::numeric_limits<double>::quiet_NaN();
  for (int64_t r = 0; r < 3; ++r) {
    for (int64_t c = 49; c < 52; ++c) v[2 * H * W + r * W + c] = -std::numeric_limits<double>::infinity();
  }
  for (int64_t pad : {0, 1}) {
    INFO("padding " << pad);
    Tensor x64 = from_data<double>(v, {N, C, H, W}).set_requires_grad();
    Tensor x32 = x64.detach().to(kFloat32).set_requires_grad();
    const Tensor y64 = max_pool2d(x64, {3, 3}, {2, 2}, {pad, pad}), y32 = max_pool2d(x32, {3, 3}, {2, 2}, {pad, pad});
    const std::vector<double> a = y64.to_vector<double>(), b = y32.to(kFloat64).to_vector<double>();
    REQUIRE(a.size() == b.size());
    bool same = true;
    for (size_t i = 0; i < a.size(); ++i) same = same && (a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])));
    CHECK(same);
    // Which input won, seen through the gradient: weights 1..7 per output, 0 on the non-finite
    // ones (their gradient stays 0, not NaN; the forward sum's NaN does not matter).
    std::vector<double> weights(a.size());
    for (size_t i = 0; i < a.size(); ++i) weights[i] = std::isfinite(a[i]) ? 1.0 + static_cast<double>(i % 7) : 0.0;
    const Tensor w64 = from_data<double>(weights, y64.shape());
    sum(y64 * w64).backward();
    sum(y32 * w64.to(kFloat32)).backward();
    CHECK(x32.grad().to_vector<float>() == x64.grad().to(kFloat32).to_vector<float>());
  }
}

TEST_CASE("max_pool2d errors name the op and the shapes", "[layers][errors]") {
  CHECK_THROWS_WITH(max_pool2d(zeros({1, 1, 4, 4}), {2, 2}, {2, 2}, {2, 2}),
                    Catch::Contains("max_pool2d: padding (2, 2) must be at most half the kernel (2, 2)"));
}
