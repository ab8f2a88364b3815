// Pairwise box overlaps, mmdetection's bbox_overlaps: boxes are (x1, y1, x2, y2) with width
// x2 - x1 (no "+1"), the union is clamped below by 1e-6 so empty boxes give 0, not NaN.
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

enum class OverlapMode : uint8_t {
  IoU,  // intersection / union
  IoF,  // intersection / area of the first box ("intersection over foreground")
};

// out: (N, M); a: (N, 4); b: (M, 4); all contiguous, one floating dtype.
GNDET_DECLARE_KERNEL(box_overlaps_kernel, void(const Tensor& out, const Tensor& a, const Tensor& b, OverlapMode mode));

// (N, 4) x (M, 4) -> (N, M). Not differentiable.
Tensor box_iou(const Tensor& a, const Tensor& b, OverlapMode mode = OverlapMode::IoU);

}  // namespace gndet
