// Test-time post-processing of the second stage (mmdetection's multiclass_nms and mask pasting).
#pragma once

#include "tensor/tensor.h"

namespace gndet {

struct ClassDetections {
  Tensor boxes;   // (D, 4)
  Tensor scores;  // (D)
  Tensor labels;  // (D) int64
};

// boxes: (K, 4 * C) class-specific or (K, 4) shared; scores: (K, C + 1), background last.
// Keeps (box, class) pairs scoring above score_thr, runs NMS per class and returns at most
// max_per_img detections by descending score.
ClassDetections multiclass_nms(const Tensor& boxes, const Tensor& scores, double score_thr, double iou_thr,
                               int64_t max_per_img);

}  // namespace gndet
