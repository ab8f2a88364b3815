// Box overlaps: IoU and IoF by hand.

#include "ops/box_iou.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;

TEST_CASE("box overlaps, IoU and IoF", "[detection]") {
  const Tensor a = from_data<float>({0, 0, 2, 2, 0, 0, 0, 0}, {2, 4});  // second box is empty
  const Tensor b = from_data<float>({1, 1, 3, 3, 0, 0, 2, 2}, {2, 4});
  const std::vector<float> iou = box_iou(a, b).to_vector<float>();
  CHECK(iou[0] == Approx(1.0 / 7.0));  // intersection 1, union 4 + 4 - 1
  CHECK(iou[1] == 1.0f);
  CHECK(iou[2] == 0.0f);
  CHECK(iou[3] == 0.0f);
  CHECK(box_iou(a, b, OverlapMode::IoF).to_vector<float>()[0] == 0.25f);
  CHECK(box_iou(zeros({0, 4}), b).shape() == Shape{0, 2});
}
