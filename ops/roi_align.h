// RoIAlign (Mask R-CNN), mmcv semantics.
//
// Each RoI (batch_index, x1, y1, x2, y2), in input-image coordinates, is scaled by
// spatial_scale onto a feature map and divided into out_h x out_w bins; every bin averages
// grid_h x grid_w bilinear samples taken at the centres of a regular sub-grid. With aligned=true
// the box is shifted by -0.5 pixel first (pixel centres at integer + 0.5, the mmdetection
// default); aligned=false is Detectron's original, which also forces the RoI to be >= 1 pixel.
// sampling_ratio 0 picks the grid adaptively: ceil(roi_size / out_size) per bin.
// Samples outside [-1, size] contribute 0; those in [-1, 0] are clamped to the border.
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

struct RoIAlignParams {
  int64_t out_h = 7;
  int64_t out_w = 7;
  double spatial_scale = 1.0;
  int64_t sampling_ratio = 0;
  bool aligned = true;
};

// out: (K, C, out_h, out_w); x: (N, C, H, W); rois: (K, 5); all contiguous.
GNDET_DECLARE_KERNEL(roi_align_kernel, void(const Tensor& out, const Tensor& x, const Tensor& rois, RoIAlignParams p));
// grad_x (N, C, H, W), zero-initialised by the caller, accumulates grad_out (K, C, out_h, out_w).
GNDET_DECLARE_KERNEL(roi_align_backward_kernel,
                     void(const Tensor& grad_x, const Tensor& grad_out, const Tensor& rois, RoIAlignParams p));

// Differentiable in x (not in the boxes).
Tensor roi_align(const Tensor& x, const Tensor& rois, const RoIAlignParams& params);

}  // namespace gndet
