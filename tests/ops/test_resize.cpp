// upsample_nearest and interpolate_bilinear against PyTorch's values, and their errors.
#include <vector>

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/resize.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;

namespace {

Tensor arange_image(int64_t h, int64_t w) { return arange(0.0, static_cast<double>(h * w), 1.0, kFloat32).reshape({1, 1, h, w}); }

}  // namespace

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

TEST_CASE("resize errors name the op and the shapes", "[layers][errors]") {
  CHECK_THROWS_WITH(upsample_nearest(zeros({2, 3}), 2), Catch::Contains("upsample_nearest: expected input (N, C, H, W)"));
}
