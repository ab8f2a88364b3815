// Pastes per-detection mask probabilities (M x M, from the mask head) into full images, as
// mmdetection's _do_paste_mask: every image pixel inside or next to its box samples the M x M map
// bilinearly at its centre (grid_sample, align_corners=False, zero padding outside the map), and
// the result is thresholded.
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

// out: (D, H, W) uint8, zero-initialised by the caller; probs: (D, M, M); boxes: (D, 4) in the
// output image's pixel coordinates; all contiguous.
GNDET_DECLARE_KERNEL(paste_masks_kernel,
                     void(const Tensor& out, const Tensor& probs, const Tensor& boxes, double threshold));

// probs (D, M, M) float, boxes (D, 4) -> (D, height, width) uint8 in {0, 1}. Not differentiable.
Tensor paste_masks(const Tensor& probs, const Tensor& boxes, int64_t height, int64_t width, double threshold = 0.5);

}  // namespace gndet
