// Anchors, box coder, assigner and sampler on worked examples.
#include <cmath>

#include "detection/anchors.h"
#include "detection/assigner.h"
#include "detection/box_coder.h"
#include "detection/sampler.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using VD = std::vector<double>;
using VI = std::vector<int64_t>;

namespace {
AnchorGenerator zoo_anchors() { return AnchorGenerator({4, 8, 16, 32, 64}, {0.5, 1.0, 2.0}, {8.0}); }
void check_box(const std::vector<double>& got, size_t at, VD expect) {
  for (size_t i = 0; i < 4; ++i) CHECK(got[at * 4 + i] == Approx(expect[i]).epsilon(1e-9));
}
}  // namespace

TEST_CASE("anchors for an 800x1333 image: mmdetection's count and first boxes", "[detection][anchors]") {
  // 800x1333 padded to a multiple of 32 is 800x1344; the FPN levels are 200x336, 100x168, 50x84,
  // 25x42 and P6 = max_pool(P5, 1, stride 2) = 13x21: 89523 locations, 3 anchors each.
  const AnchorGenerator gen = zoo_anchors();
  const int64_t sizes[5][2] = {{200, 336}, {100, 168}, {50, 84}, {25, 42}, {13, 21}};
  int64_t total = 0;
  std::vector<Tensor> levels;
  for (int l = 0; l < 5; ++l) {
    levels.push_back(gen.grid_anchors(l, sizes[l][0], sizes[l][1], kFloat64));
    total += levels.back().size(0);
  }
  CHECK(total == 268569);
  // Base size 4 * scale 8 = 32; ratio 0.5 gives w = 32 * sqrt(2) = 45.25, h = 32 / sqrt(2) = 22.63.
  const double a = 16.0 * std::sqrt(2.0), b = 16.0 / std::sqrt(2.0);
  const std::vector<double> l0 = levels[0].to_vector<double>();
  check_box(l0, 0, {-a, -b, a, b});
  check_box(l0, 1, {-16, -16, 16, 16});
  check_box(l0, 2, {-b, -a, b, a});
  check_box(l0, 3, {-a + 4, -b, a + 4, b});                // next location to the right: +stride
  check_box(l0, 3 * 336, {-a, -b + 4, a, b + 4});          // next row
  check_box(levels[1].to_vector<double>(), 1, {-32, -32, 32, 32});
  check_box(levels[4].to_vector<double>(), 1, {-256, -256, 256, 256});
  CHECK(gen.grid_anchors(0, 200, 336, kFloat64).is_same(levels[0]));  // cached
}

TEST_CASE("delta coder: hand example, round trip, clamping and clipping", "[detection][coder]") {
  DeltaXYWHCoder coder;
  coder.stds = {0.1, 0.1, 0.2, 0.2};
  // p = [0, 0, 10, 10]: centre (5, 5), size 10x10; g = [1, 2, 11, 14]: centre (6, 8), size 10x12.
  const Tensor p = from_data<double>({0, 0, 10, 10}, {1, 4});
  const Tensor g = from_data<double>({1, 2, 11, 14}, {1, 4});
  const VD d = coder.encode(p, g).to_vector<double>();
  CHECK(d[0] == Approx(0.1 / 0.1));
  CHECK(d[1] == Approx(0.3 / 0.1));
  CHECK(d[2] == Approx(0.0).margin(1e-12));
  CHECK(d[3] == Approx(std::log(1.2) / 0.2));
  const VD back = coder.decode(p, coder.encode(p, g)).to_vector<double>();
  for (int i = 0; i < 4; ++i) CHECK(back[i] == Approx(g.to_vector<double>()[i]).epsilon(1e-12));
  // dw = 10 * 0.2 = 2 is within the clamp; 100 is not: width becomes 10 * 62.5.
  const VD big = DeltaXYWHCoder().decode(p, from_data<double>({0, 0, 100, 0}, {1, 4})).to_vector<double>();
  CHECK(big[2] - big[0] == Approx(10 * 62.5));
  const VD clipped = DeltaXYWHCoder().decode(p, from_data<double>({0, 0, 100, 0}, {1, 4}), {8, 9}).to_vector<double>();
  CHECK(clipped == VD{0, 0, 9, 8});
  // Class-specific deltas (K, 4 * C) decode per class.
  const Tensor two = coder.decode(p, from_data<double>({0, 0, 0, 0, 1, 0, 0, 0}, {1, 8}));
  CHECK(two.to_vector<double>() == VD{0, 0, 10, 10, 1, 0, 11, 10});
}

namespace {
// Boxes [0, 0, 10, w] overlap the gt [0, 0, 10, 10] with IoU exactly w / 10.
Tensor strips(const VD& ious) {
  VD v;
  for (double i : ious) v.insert(v.end(), {0, 0, 10, 10 * i});
  return from_data<double>(v, {static_cast<int64_t>(ious.size()), 4});
}
const Tensor kGt = from_data<double>({0, 0, 10, 10}, {1, 4});
const Tensor kLabel = from_data<int64_t>({7});
}  // namespace

TEST_CASE("MaxIoUAssigner: negatives, ignored, positives", "[detection][assigner]") {
  MaxIoUAssigner a;
  a.pos_iou_thr = 0.5;
  a.neg_iou_thr = 0.4;
  a.min_pos_iou = 0.3;
  a.match_low_quality = false;
  const AssignResult r = a.assign(strips({0.35, 0.45, 0.6}), kGt, kLabel);
  CHECK(r.gt_inds.to_vector<int64_t>() == VI{0, -1, 1});
  CHECK(r.labels.to_vector<int64_t>() == VI{-1, -1, 7});
  CHECK(r.max_overlaps.to_vector<double>()[2] == Approx(0.6));
}

TEST_CASE("MaxIoUAssigner: low-quality matches rescue a gt without positives", "[detection][assigner]") {
  MaxIoUAssigner a;
  a.pos_iou_thr = 0.5;
  a.neg_iou_thr = 0.4;
  a.min_pos_iou = 0.3;
  CHECK(a.assign(strips({0.35, 0.2}), kGt, kLabel).gt_inds.to_vector<int64_t>() == VI{1, 0});
  // Below min_pos_iou nothing is rescued.
  CHECK(a.assign(strips({0.25, 0.2}), kGt, kLabel).gt_inds.to_vector<int64_t>() == VI{0, 0});
  // gt_max_assign_all: every box tying for the gt's best IoU is claimed.
  CHECK(a.assign(strips({0.35, 0.35, 0.1}), kGt, kLabel).gt_inds.to_vector<int64_t>() == VI{1, 1, 0});
  a.gt_max_assign_all = false;
  CHECK(a.assign(strips({0.35, 0.35, 0.1}), kGt, kLabel).gt_inds.to_vector<int64_t>() == VI{1, 0, 0});
}

TEST_CASE("MaxIoUAssigner: a later gt overrides an earlier one's low-quality claim", "[detection][assigner]") {
  MaxIoUAssigner a;
  a.pos_iou_thr = 0.9;
  a.neg_iou_thr = 0.1;
  a.min_pos_iou = 0.1;
  // Two identical gts: both claim the same best box; the second (index 2 when 1-based) wins.
  const Tensor gts = from_data<double>({0, 0, 10, 10, 0, 0, 10, 10}, {2, 4});
  const AssignResult r = a.assign(strips({0.5, 0.3}), gts, from_data<int64_t>({3, 4}));
  CHECK(r.gt_inds.to_vector<int64_t>() == VI{2, -1});
  CHECK(r.labels.to_vector<int64_t>() == VI{4, -1});
  // No gt at all: everything is background.
  CHECK(a.assign(strips({0.5}), zeros({0, 4}, kFloat64), zeros({0}, kInt64)).gt_inds.to_vector<int64_t>() == VI{0});
}

TEST_CASE("RandomSampler: sizes, order, gt proposals and reproducibility", "[detection][sampler]") {
  // 6 positives (IoU 0.6..0.85) and 10 negatives (IoU 0.05..0.3) against one gt.
  VD ious;
  for (int i = 0; i < 6; ++i) ious.push_back(0.6 + 0.05 * i);
  for (int i = 0; i < 10; ++i) ious.push_back(0.05 + 0.025 * i);
  const Tensor boxes = strips(ious);
  MaxIoUAssigner a;
  a.pos_iou_thr = 0.5;
  a.neg_iou_thr = 0.5;
  a.min_pos_iou = 0.5;
  RandomSampler s;
  s.num = 8;
  s.pos_fraction = 0.25;
  s.add_gt_as_proposals = false;
  Generator g1(5), g2(5);
  const SamplingResult r = s.sample(a, boxes, kGt, kLabel, g1);
  CHECK(r.num_pos() == 2);  // int(8 * 0.25)
  CHECK(r.num_neg() == 6);  // the rest
  const VI pos = r.pos_inds.to_vector<int64_t>(), neg = r.neg_inds.to_vector<int64_t>();
  CHECK(std::is_sorted(pos.begin(), pos.end()));
  for (int64_t i : pos) CHECK(i < 6);
  for (int64_t i : neg) CHECK(i >= 6);
  CHECK(r.pos_gt_labels.to_vector<int64_t>() == VI{7, 7});
  CHECK(s.sample(a, boxes, kGt, kLabel, g2).pos_inds.to_vector<int64_t>() == pos);  // same seed, same draw

  s.add_gt_as_proposals = true;
  s.pos_fraction = 1.0;
  s.num = 100;
  Generator g3(1);
  const SamplingResult with_gt = s.sample(a, boxes, kGt, kLabel, g3);
  CHECK(with_gt.num_pos() == 7);  // the gt itself plus the 6 positives
  CHECK(with_gt.pos_is_gt.to_vector<bool>()[0]);
  CHECK(with_gt.pos_boxes.narrow(0, 0, 1).to_vector<double>() == kGt.to_vector<double>());
  CHECK(with_gt.pos_gt_boxes.to_vector<double>() == kGt.expand({7, 4}).contiguous().to_vector<double>());
  CHECK(with_gt.num_neg() == 10);  // 100 - 7 slots left, all 10 negatives fit
}
