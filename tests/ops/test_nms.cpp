// NMS against a brute-force reference on random boxes, and batched NMS.
#include <algorithm>
#include <numeric>

#include "ops/elementwise.h"
#include "ops/join.h"
#include "ops/nms.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;

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
