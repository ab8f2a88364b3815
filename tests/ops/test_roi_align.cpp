// RoIAlign on hand-computed cases (a 5x5 arange), its gradient, and its errors.

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/roi_align.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;

namespace {
// The 5x5 map v(y, x) = 5y + x. Bilinear interpolation of a linear function is exact, so every
// expected value below is 5y + x at the sample positions derived by hand in each comment.
Tensor arange5x5() { return arange(0.0, 25.0, 1.0, kFloat32).reshape({1, 1, 5, 5}); }
Tensor roi(std::vector<float> box) {
  box.insert(box.begin(), 0.0f);
  return from_data<float>(box, {1, 5});
}
}  // namespace

TEST_CASE("RoIAlign on a 5x5 arange, aligned (mmdetection)", "[detection][roi_align]") {
  // Box [1, 1, 3, 3] shifted by -0.5 spans [0.5, 2.5]: bins of 0.5, one sample per bin (ceil(2/4)),
  // at 0.75, 1.25, 1.75, 2.25 along each axis.
  const Tensor out = roi_align(arange5x5(), roi({1, 1, 3, 3}), {4, 4, 1.0, 0, true});
  CHECK(out.to_vector<float>() == V{4.5, 5.0, 5.5, 6.0, 7.0, 7.5, 8.0, 8.5, 9.5, 10.0, 10.5, 11.0, 12.0, 12.5, 13.0, 13.5});
}

TEST_CASE("RoIAlign on a 5x5 arange, not aligned (Detectron)", "[detection][roi_align]") {
  // Without the shift the box spans [1, 3]: samples at 1.25, 1.75, 2.25, 2.75.
  const Tensor out = roi_align(arange5x5(), roi({1, 1, 3, 3}), {4, 4, 1.0, 0, false});
  CHECK(out.to_vector<float>() == V{7.5, 8, 8.5, 9, 10, 10.5, 11, 11.5, 12.5, 13, 13.5, 14, 15, 15.5, 16, 16.5});
}

TEST_CASE("RoIAlign clamps samples at the border and zeroes those outside", "[detection][roi_align]") {
  // [3.5, 5.5] aligned -> [3, 5], one 2x2-sampled bin: samples at 3.5 and 4.5; 4.5 lies past the
  // last row/column (4) and is clamped to 4. Mean of v at (3.5|4, 3.5|4) = (21 + 21.5 + 23.5 + 24) / 4.
  CHECK(roi_align(arange5x5(), roi({3.5, 3.5, 5.5, 5.5}), {1, 1, 1.0, 2, true}).item<float>() == 22.5f);
  // Entirely beyond x > W: every sample contributes 0.
  CHECK(roi_align(arange5x5(), roi({10, 10, 12, 12}), {2, 2, 1.0, 0, true}).to_vector<float>() == V{0, 0, 0, 0});
  // spatial_scale 0.5 maps [2, 2, 6, 6] onto [1, 1, 3, 3] of the map: same as the aligned=false case.
  CHECK(roi_align(arange5x5(), roi({2, 2, 6, 6}), {4, 4, 0.5, 0, false}).to_vector<float>()[0] == 7.5f);
}

TEST_CASE("RoIAlign backward spreads each output's gradient with weights summing to 1", "[detection][roi_align]") {
  Tensor x = arange5x5().set_requires_grad();
  const Tensor out = roi_align(x, roi({1, 1, 3, 3}), {4, 4, 1.0, 0, true});
  sum(out).backward();
  CHECK(sum(x.grad()).item<float>() == Approx(16.0f));
  // Samples at 0.75..2.25 touch rows and columns 0..3 only.
  const std::vector<float> g = x.grad().to_vector<float>();
  for (int i = 0; i < 5; ++i) CHECK(g[4 * 5 + i] == 0.0f);
}

TEST_CASE("RoIAlign rejects bad inputs clearly", "[detection][roi_align][errors]") {
  CHECK_THROWS_WITH(roi_align(arange5x5(), from_data<float>({1, 0, 0, 1, 1}, {1, 5}), {}),
                    Catch::Contains("batch index 1 outside the batch of 1"));
  CHECK_THROWS_WITH(roi_align(arange5x5(), zeros({1, 4}), {}), Catch::Contains("(K, 5)"));
}
