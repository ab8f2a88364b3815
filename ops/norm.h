// Normalisation layers of the zoo: GroupNorm, mmcv's weight standardisation (ConvWS2d) and the
// frozen BatchNorm of pre-trained backbones.
//
// group_norm: x (N, C, *) is seen as (N, C, S), S = product of the trailing dims. For every
// (n, g), g < G, the statistics run over the C/G channels of group g and all S positions:
//   mean, var (biased) -> rstd = 1 / sqrt(var + eps); y = (x - mean) * rstd * weight[c] + bias[c].
// Statistics are accumulated in double on the CPU (chunked two-pass, merged by Chan's formula).
// Works for S == 1, C == G and N == 0.
//
// weight_standardization: w (O, I, kh, kw) (any w with O = w.size(0) and R = numel / O >= 2):
//   w_hat[o] = (w[o] - mean(w[o])) / (std_unbiased(w[o]) + eps), over the R values of channel o.
//
// frozen_batch_norm: y = (x - running_mean) * rsqrt(running_var + eps) * weight + bias per channel
// c = dim 1. All four per-channel tensors are buffers and get no gradient; x does.
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

// y (N, C, S), mean (N, G), rstd (N, G) are written; x (N, C, S); weight, bias: (C) or undefined.
GNDET_DECLARE_KERNEL(group_norm_kernel,
                     void(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                          const Tensor& weight, const Tensor& bias, int64_t groups, double eps));
// The same with max(0, y) written instead of y (group_norm_relu); registered for the CPU only.
GNDET_DECLARE_KERNEL(group_norm_relu_kernel,
                     void(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                          const Tensor& weight, const Tensor& bias, int64_t groups, double eps));
// Gradients of group_norm given dy (N, C, S). dx (N, C, S), dweight (C), dbias (C) are overwritten;
// each may be undefined when not wanted. weight may be undefined (meaning ones).
GNDET_DECLARE_KERNEL(group_norm_backward_kernel,
                     void(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                          const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                          int64_t groups));
// out (O, R) = the standardised rows of w (O, R).
GNDET_DECLARE_KERNEL(weight_standardization_kernel, void(const Tensor& out, const Tensor& w, double eps));
// dw (O, R) overwritten with the gradient of weight standardisation given dout (O, R).
GNDET_DECLARE_KERNEL(weight_standardization_backward_kernel,
                     void(const Tensor& dw, const Tensor& dout, const Tensor& w, double eps));
// y (N, C, S) = x (N, C, S) * scale[c] + shift[c]; scale, shift: (C); shift may be undefined (zero).
GNDET_DECLARE_KERNEL(channel_affine_kernel,
                     void(const Tensor& y, const Tensor& x, const Tensor& scale, const Tensor& shift));

// x: (N, C, *) ; weight, bias: (C) or undefined; statistics per (n, g) over C/G * spatial
Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// relu(group_norm(...)), the pair that follows most convolutions of the GN zoo. On the CPU the
// ReLU is applied as GroupNorm writes its output (one pass over it less, and one tensor less kept
// for the backward), elsewhere the two ops run. Same values and gradients as the two ops.
Tensor group_norm_relu(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps = 1e-5);
// mmcv ConvWS2d: per output channel o, w_hat = (w - mean_o) / (std_unbiased_o + eps) over (C_in/groups, kh, kw)
Tensor weight_standardization(const Tensor& w, double eps = 1e-5);
// y = (x - mean) * rsqrt(var + eps) * weight + bias, per channel, all four are buffers (not differentiated); x differentiable
Tensor frozen_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, double eps = 1e-5);

}  // namespace gndet
