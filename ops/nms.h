// Non-maximum suppression, mmcv semantics: boxes in score order suppress every later box whose
// IoU with them is strictly greater than the threshold (IoU without "+1"). Ties in score keep
// the lower index first, so results are deterministic.
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

// boxes: (K, 4) contiguous, already sorted by descending score. Returns the positions (int64,
// ascending) that survive, on boxes' device.
GNDET_DECLARE_KERNEL(nms_sorted_kernel, Tensor(const Tensor& boxes, double iou_threshold));

// boxes: (K, 4); scores: (K). Kept indices into boxes, by descending score. Not differentiable.
Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold);
// NMS run independently within each group (class or pyramid level) given by idxs (K) int64:
// boxes of different groups never suppress each other. Implemented, as in mmcv, by offsetting
// each group's boxes by group * (max coordinate + 1) so they cannot overlap.
Tensor batched_nms(const Tensor& boxes, const Tensor& scores, const Tensor& idxs, double iou_threshold);

}  // namespace gndet
