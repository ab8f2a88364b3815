// 2-D max pooling, PyTorch's F.max_pool2d (no dilation).
//
// Output size per spatial dim: out = floor((in + 2p - k) / s) + 1, or with ceil_mode
// ceil((in + 2p - k) / s) + 1, minus one when the last window would start inside the right
// padding (so every window overlaps the input). Padding may be at most half the kernel.
// Padded positions never win; a NaN in a window wins (it propagates, as in PyTorch).
// Kernel 1 / stride 2 is FPN's P6 (every other pixel).
#pragma once

#include "ops/conv.h"
#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

struct Pool2dParams {
  Pair kernel{1, 1};
  Pair stride{1, 1};
  Pair padding{0, 0};
};

// out, indices (int64): (N, C, H_out, W_out); x: (N, C, H, W); all contiguous. indices[..] is the
// winner's position ih * W + iw inside its (n, c) plane.
GNDET_DECLARE_KERNEL(max_pool2d_kernel, void(const Tensor& out, const Tensor& indices, const Tensor& x, Pool2dParams p));
// dx (N, C, H, W) = 0, then dx[n, c, indices[n, c, k]] += dy[n, c, k]. dy, indices: (N, C, H_out, W_out).
GNDET_DECLARE_KERNEL(max_pool2d_backward_kernel, void(const Tensor& dx, const Tensor& dy, const Tensor& indices));

// x: (N, C, H, W) -> (N, C, H_out, W_out); differentiable in x (the gradient goes to each winner).
Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding = {0, 0}, bool ceil_mode = false);

}  // namespace gndet
