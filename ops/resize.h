// Spatial resizing of (N, C, H, W) tensors, PyTorch F.interpolate semantics.
//
// nearest:  src = floor(dst * in / out), computed exactly in integers (PyTorch's float formula
//           agrees for every integer scale factor); an integer factor s gives out = in * s.
// bilinear: align_corners=false: src = max((dst + 0.5) * in / out - 0.5, 0);
//           align_corners=true:  src = dst * (in - 1) / (out - 1) (0 when out == 1);
//           then the two neighbours floor(src) and floor(src) + 1 (clamped to the last pixel)
//           weighted by 1 - frac and frac, separately along H and W.
// Both work for down-sampling too, and are differentiable in x.
#pragma once

#include <cstdint>

#include "ops/elementwise_functors.h"  // GNDET_HD
#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

namespace resize {

GNDET_HD int64_t nearest_source(int64_t dst, int64_t in, int64_t out) { return dst * in / out; }

// The two input positions that output position `dst` interpolates between, and their weights.
struct LinearTap {
  int64_t i0, i1;
  double w0, w1;
};
GNDET_HD LinearTap linear_tap(int64_t dst, int64_t in, int64_t out, bool align_corners) {
  double src;
  if (align_corners) {
    src = out > 1 ? static_cast<double>(dst) * static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
  } else {
    src = (static_cast<double>(dst) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5;
    if (src < 0.0) src = 0.0;
  }
  int64_t i0 = static_cast<int64_t>(src);  // floor: src >= 0
  if (i0 > in - 1) i0 = in - 1;
  const int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
  const double w1 = src - static_cast<double>(i0);
  return {i0, i1, 1.0 - w1, w1};
}

}  // namespace resize

// out: (N, C, H_out, W_out); x: (N, C, H, W); contiguous. Sizes come from the tensors.
GNDET_DECLARE_KERNEL(upsample_nearest_kernel, void(const Tensor& out, const Tensor& x));
// dx (N, C, H, W) overwritten with the sum of dy (N, C, H_out, W_out) over the positions that read each pixel.
GNDET_DECLARE_KERNEL(upsample_nearest_backward_kernel, void(const Tensor& dx, const Tensor& dy));
GNDET_DECLARE_KERNEL(interpolate_bilinear_kernel, void(const Tensor& out, const Tensor& x, bool align_corners));
// dx overwritten: the adjoint of interpolate_bilinear_kernel applied to dy.
GNDET_DECLARE_KERNEL(interpolate_bilinear_backward_kernel,
                     void(const Tensor& dx, const Tensor& dy, bool align_corners));

// x: (N, C, H, W) -> (N, C, out_h, out_w)
Tensor upsample_nearest(const Tensor& x, int64_t out_h, int64_t out_w);  // src = floor(dst * in / out)
Tensor upsample_nearest(const Tensor& x, int64_t scale);                  // integer factor: (H * scale, W * scale)
Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners = false);

}  // namespace gndet
