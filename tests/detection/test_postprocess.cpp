// Mask pasting, multiclass NMS and RoI level mapping on hand-worked cases.
#include "detection/postprocess.h"
#include "detection/roi_extractor.h"
#include "ops/elementwise.h"
#include "ops/paste_masks.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using VI = std::vector<int64_t>;

TEST_CASE("paste_masks: a full mask fills exactly its box", "[detection][postprocess]") {
  // Box [10, 20] on 28 cells: pixel p samples map coordinate (p + 0.5 - 10) / 10 * 28 - 0.5, which is
  // 0.9 for p = 10 (inside) and -1.9 for p = 9 (both neighbours outside: 0); 26.1 for p = 19 and
  // 28.9 for p = 20 (outside). So exactly pixels 10..19 are set.
  const Tensor probs = ones({1, 28, 28});
  const Tensor out = paste_masks(probs, from_data<float>({10, 10, 20, 20}, {1, 4}), 30, 30);
  CHECK(out.dtype() == kUInt8);
  CHECK(sum(out).item<int64_t>() == 100);
  const std::vector<uint8_t> v = out.to_vector<uint8_t>();
  CHECK(v[10 * 30 + 10] == 1);
  CHECK(v[19 * 30 + 19] == 1);
  CHECK(v[9 * 30 + 10] == 0);
  CHECK(v[20 * 30 + 19] == 0);
}

TEST_CASE("paste_masks: half-pixel interpolation at the border and the threshold", "[detection][postprocess]") {
  // A 2x2 map of ones pasted into [0, 4]: pixel p samples u = p / 2 - 0.25, so along one axis pixels
  // 0..4 get 0.75, 1, 1, 0.75, 0.25 (the rest of the weight falls on the zero padding). The 2-D value
  // is the product: all 16 of pixels 0..3 reach 0.5 (0.75^2 = 0.5625), only the 2x2 with 1 * 1 reach 0.8.
  const Tensor probs = ones({1, 2, 2});
  const Tensor box = from_data<float>({0, 0, 4, 4}, {1, 4});
  CHECK(sum(paste_masks(probs, box, 6, 6, 0.5)).item<int64_t>() == 16);
  CHECK(sum(paste_masks(probs, box, 6, 6, 0.8)).item<int64_t>() == 4);
  // Box [4, 10] on a 6-pixel image: u = (p - 3.5) / 3 - 0.5 gives 0.33, 0.67, 1 for pixels 3, 4, 5;
  // products >= 0.5 at (4, 5), (5, 4), (5, 5) only. Pixels past the edge are never written.
  CHECK(sum(paste_masks(probs, from_data<float>({4, 4, 10, 10}, {1, 4}), 6, 6)).item<int64_t>() == 3);
  // Degenerate boxes paste nothing.
  CHECK(sum(paste_masks(probs, from_data<float>({2, 2, 2, 5}, {1, 4}), 6, 6)).item<int64_t>() == 0);
}

TEST_CASE("multiclass_nms: threshold, per-class NMS, order and cap", "[detection][postprocess]") {
  // Two RoIs, two classes (+ background). Class-specific boxes: both RoIs predict nearly the same
  // box for class 0 (IoU 0.9: one survives) and distinct boxes for class 1.
  const Tensor boxes = from_data<float>({0, 0, 10, 10, 50, 50, 60, 60,  //
                                         0, 0, 10, 9, 70, 70, 80, 80},
                                        {2, 8});
  const Tensor scores = from_data<float>({0.9f, 0.6f, 0.0f,  //
                                          0.8f, 0.04f, 0.16f},
                                         {2, 3});
  const ClassDetections d = multiclass_nms(boxes, scores, 0.05, 0.5, 100);
  CHECK(d.scores.to_vector<float>() == std::vector<float>{0.9f, 0.6f});  // 0.8 suppressed, 0.04 below thr
  CHECK(d.labels.to_vector<int64_t>() == VI{0, 1});
  CHECK(d.boxes.to_vector<float>() == std::vector<float>{0, 0, 10, 10, 50, 50, 60, 60});
  CHECK(multiclass_nms(boxes, scores, 0.05, 0.5, 1).scores.numel() == 1);
  CHECK(multiclass_nms(boxes, scores, 0.95, 0.5, 100).boxes.shape() == Shape{0, 4});
}

TEST_CASE("RoI level mapping follows mmdetection's finest_scale rule", "[detection][roi_extractor]") {
  RoIExtractor e;
  e.featmap_strides = {4, 8, 16, 32};
  // Scales 32, 111, 112, 224, 448, 2000: floor(log2(s / 56)) clamped to 0..3.
  const Tensor rois = from_data<float>({0, 0, 0, 32, 32, 0, 0, 0, 111, 111, 0, 0, 0, 112, 112,  //
                                        0, 0, 0, 224, 224, 0, 0, 0, 448, 448, 0, 0, 0, 2000, 2000},
                                       {6, 5});
  CHECK(e.map_levels(rois).to_vector<int64_t>() == VI{0, 0, 1, 2, 3, 3});
}

TEST_CASE("RoI extractor gathers each RoI from its level, in RoI order", "[detection][roi_extractor]") {
  RoIExtractor e;
  e.featmap_strides = {4, 8};
  e.roi = {1, 1, 1.0, 1, true};
  // Level maps filled with their level number + 1; a 120-pixel RoI reads level 1 (its one sample,
  // at the box centre 60 / 8 - 0.5 = 7, is the last row and column of the 8x8 map), small ones level 0.
  const Tensor l0 = full({1, 1, 16, 16}, 1.0), l1 = full({1, 1, 8, 8}, 2.0);
  const Tensor rois = from_data<float>({0, 0, 0, 120, 120, 0, 0, 0, 10, 10, 0, 0, 0, 20, 20}, {3, 5});
  CHECK(e({l0, l1}, rois).to_vector<float>() == std::vector<float>{2, 1, 1});
  CHECK(boxes_to_rois({ones({2, 4}), zeros({1, 4})}).to_vector<float>() ==
        std::vector<float>{0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0});
}
