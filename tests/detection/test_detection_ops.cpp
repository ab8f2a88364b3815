// RoIAlign on hand-computed cases, NMS against a brute-force reference, box overlaps.
#include <algorithm>
#include <numeric>

#include "ops/box_iou.h"
#include "ops/elementwise.h"
#include "ops/join.h"
#include "ops/nms.h"
#include "ops/reduce.h"
#include "ops/roi_align.h"
#include "tensor/factory.h"
#include "tensor/random.h"
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

namespace {
// Brute force: walk boxes by descending score (ties: lower index first) and keep a box when no
// kept box overlaps it by more than the threshold. IoU in double, computed independently.
std::vector<int64_t> reference_nms(const std::vector<float>& b, const std::vector<float>& s, double thr) {
  std::vector<int64_t> order(s.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
  auto iou = [&](int64_t i, int64_t j) {
    const double w = std::max(0.0, double(std::min(b[4 * i + 2], b[4 * j + 2])) - std::max(b[4 * i], b[4 * j]));
    const double h = std::max(0.0, double(std::min(b[4 * i + 3], b[4 * j + 3])) - std::max(b[4 * i + 1], b[4 * j + 1]));
    const double ai = double(b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
    const double aj = double(b[4 * j + 2] - b[4 * j]) * (b[4 * j + 3] - b[4 * j + 1]);
    return w * h / (ai + aj - w * h);
  };
  std::vector<int64_t> keep;
  for (int64_t i : order) {
    bool ok = true;
    for (int64_t k : keep) ok = ok && !(iou(i, k) > thr);
    if (ok) keep.push_back(i);
  }
  return keep;
}

Tensor random_boxes(int64_t n, Generator& g) {
  const Tensor xy = rand({n, 2}, g) * 80.0;
  const Tensor wh = rand({n, 2}, g) * 40.0 + 2.0;
  return cat({xy, xy + wh}, 1);
}
}  // namespace

TEST_CASE("NMS matches a brute-force reference on random boxes", "[detection][nms]") {
  Generator g(11);
  for (double thr : {0.3, 0.5, 0.7}) {
    const Tensor boxes = random_boxes(300, g);
    const Tensor scores = rand({300}, g);
    const std::vector<int64_t> expect = reference_nms(boxes.to_vector<float>(), scores.to_vector<float>(), thr);
    INFO("threshold " << thr);
    CHECK(nms(boxes, scores, thr).to_vector<int64_t>() == expect);
  }
  CHECK(nms(zeros({0, 4}), zeros({0}), 0.5).numel() == 0);
}

TEST_CASE("batched NMS never suppresses across groups", "[detection][nms]") {
  const Tensor boxes = from_data<float>({0, 0, 10, 10, 0, 0, 10, 10, 1, 1, 10, 10}, {3, 4});
  const Tensor scores = from_data<float>({0.9f, 0.8f, 0.7f});
  CHECK(nms(boxes, scores, 0.5).to_vector<int64_t>() == std::vector<int64_t>{0});
  const Tensor groups = from_data<int64_t>({0, 1, 1});
  CHECK(batched_nms(boxes, scores, groups, 0.5).to_vector<int64_t>() == std::vector<int64_t>{0, 1});
  Generator g(12);
  const Tensor many = random_boxes(200, g);
  const Tensor sc = rand({200}, g);
  const Tensor ids = randint(0, 3, {200}, g);
  // Reference: NMS within each group separately, merged by score.
  std::vector<int64_t> expect;
  const std::vector<float> b = many.to_vector<float>(), s = sc.to_vector<float>();
  const std::vector<int64_t> id = ids.to_vector<int64_t>();
  for (int64_t c = 0; c < 3; ++c) {
    std::vector<float> bc, scc;
    std::vector<int64_t> back;
    for (int64_t i = 0; i < 200; ++i) {
      if (id[i] != c) continue;
      bc.insert(bc.end(), b.begin() + 4 * i, b.begin() + 4 * i + 4);
      scc.push_back(s[i]);
      back.push_back(i);
    }
    for (int64_t k : reference_nms(bc, scc, 0.5)) expect.push_back(back[k]);
  }
  std::sort(expect.begin(), expect.end(), [&](int64_t i, int64_t j) { return s[i] > s[j]; });
  CHECK(batched_nms(many, sc, ids, 0.5).to_vector<int64_t>() == expect);
}
