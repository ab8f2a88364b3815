// What flows between the data pipeline, the detector and the evaluator.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace gndet {

// Ground truth of one image, in the coordinates of the network input (after resize and flip).
struct ImageTargets {
  Tensor boxes;   // (G, 4) float32 x1y1x2y2
  Tensor labels;  // (G) int64 in [0, num_classes)
  Tensor masks;   // (G, H, W) uint8 bitmaps at the network input size; undefined for box-only models
};

// Geometry of one image through the pipeline.
struct ImageInfo {
  int64_t image_id = -1;
  int64_t height = 0, width = 0;          // the resized image (before padding)
  int64_t pad_height = 0, pad_width = 0;  // its own size rounded up to the size divisor
  int64_t ori_height = 0, ori_width = 0;  // the image file
  double scale_w = 1.0, scale_h = 1.0;    // resized / original
  bool flipped = false;                   // horizontally, after resizing
};

// Detections of one image, in original-image coordinates.
struct Detections {
  Tensor boxes;   // (D, 4) float32
  Tensor scores;  // (D)
  Tensor labels;  // (D) int64
  Tensor masks;   // (D, ori_height, ori_width) uint8, or undefined for box-only models
};

// Proposals of one image (detached), from the RPN to the RoI head.
struct Proposals {
  Tensor boxes;   // (P, 4) x1y1x2y2 at the network input size
  Tensor scores;  // (P)
};

// Named scalar losses in a fixed order ("loss_rpn_cls", "loss_rpn_bbox", "loss_cls", ...).
using LossDict = std::vector<std::pair<std::string, Tensor>>;

}  // namespace gndet
