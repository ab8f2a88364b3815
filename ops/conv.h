// 2-D convolution and transposed convolution (PyTorch semantics, NCHW).
//
// conv2d:            x (N, C_in, H, W), w (C_out, C_in/groups, kh, kw), b (C_out) or undefined
//                    -> (N, C_out, H_out, W_out), H_out = (H + 2p - d*(k-1) - 1) / s + 1 (floor)
// conv_transpose2d:  x (N, C_in, H, W), w (C_in, C_out/groups, kh, kw), b (C_out) or undefined
//                    -> (N, C_out, H_out, W_out), H_out = (H-1)*s - 2p + d*(k-1) + output_padding + 1
// Under autocast (ops/autocast.h) a float32 product runs on 16-bit operands with float32
// accumulation, its result rounded to 16 bits. Both are differentiable in x, w and b; a gradient
// is computed only for the inputs that require one (a frozen layer costs no weight gradient, the
// image costs no input gradient).
//
// The three kernels below are the whole device interface: conv_transpose2d is the adjoint of
// conv2d, so its forward is conv2d's input gradient and its backward is conv2d's forward and
// weight gradient. A kernel reads every size from its tensor arguments (all contiguous, one dtype)
// and the rest of the geometry from Conv2dParams.
#pragma once

#include <array>
#include <cstdint>

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

using Pair = std::array<int64_t, 2>;  // (h, w)

// Geometry of a convolution beyond the tensor sizes. Plain data: CUDA kernels take it by value.
struct Conv2dParams {
  Pair stride{1, 1};
  Pair padding{0, 0};
  Pair dilation{1, 1};
  int64_t groups = 1;
};

// y (N, C_out, H_out, W_out) = conv(x (N, C_in, H, W), w (C_out, C_in/groups, kh, kw)) + b (C_out),
// b may be undefined. y is overwritten.
GNDET_DECLARE_KERNEL(conv2d_forward_kernel,
                     void(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, Conv2dParams p));
// dx (N, C_in, H, W) = d(sum(dy * conv(x, w))) / dx for dy (N, C_out, H_out, W_out). Overwritten.
GNDET_DECLARE_KERNEL(conv2d_backward_input_kernel,
                     void(const Tensor& dx, const Tensor& dy, const Tensor& w, Conv2dParams p));
// dw (C_out, C_in/groups, kh, kw) = d(sum(dy * conv(x, w))) / dw. Overwritten.
GNDET_DECLARE_KERNEL(conv2d_backward_weight_kernel,
                     void(const Tensor& dw, const Tensor& dy, const Tensor& x, Conv2dParams p));
// db (C) = sum of dy (N, C, S) over N and S (the gradient of a per-channel bias). Overwritten.
GNDET_DECLARE_KERNEL(channel_sum_kernel, void(const Tensor& db, const Tensor& dy));

// x: (N, C_in, H, W); w: (C_out, C_in/groups, kh, kw); b: (C_out) or undefined Tensor()
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, Pair stride = {1, 1}, Pair padding = {0, 0},
              Pair dilation = {1, 1}, int64_t groups = 1);
// x: (N, C_in, H, W); w: (C_in, C_out/groups, kh, kw) (PyTorch layout);
// out H = (H-1)*s - 2p + d*(k-1) + output_padding + 1. output_padding must be smaller than the
// stride or the dilation (PyTorch's rule).
Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, Pair stride = {1, 1},
                        Pair padding = {0, 0}, Pair output_padding = {0, 0}, Pair dilation = {1, 1},
                        int64_t groups = 1);

}  // namespace gndet
