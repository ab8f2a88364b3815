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

TEST_CASE("max_pool2d errors name the op and the shapes", "[layers][errors]") {
  CHECK_THROWS_WITH(max_pool2d(zeros({1, 1, 4, 4}), {2, 2}, {2, 2}, {2, 2}),
                    Catch::Contains("max_pool2d: padding (2, 2) must be at most half the kernel (2, 2)"));
}
