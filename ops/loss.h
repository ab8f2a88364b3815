// Losses of the detection heads, PyTorch F.* semantics. Each returns a 0-dim tensor (Mean, Sum)
// or the per-element / per-sample losses (None), and is differentiable w.r.t. logits / pred
// (and w.r.t. a floating target where PyTorch defines it: BCE and the L1 family).
// A Mean over zero elements is NaN, as in PyTorch; detection losses that may see no samples
// use Sum and divide by their own normaliser.
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

enum class Reduction { None, Mean, Sum };

// losses (N) = -w[t_i] * log_softmax(logits_i)[t_i] and sample_weights (N) = w[t_i], both 0 where
// t_i == ignore_index; w == 1 when class_weight is undefined. logits (N, C), target (N) int64,
// class_weight (C) or undefined. A target outside [0, C) other than ignore_index is an error.
GNDET_DECLARE_KERNEL(cross_entropy_kernel,
                     void(const Tensor& losses, const Tensor& sample_weights, const Tensor& logits,
                          const Tensor& target, const Tensor& class_weight, int64_t ignore_index));
// dlogits (N, C) = grad[i] * w[t_i] * (softmax(logits_i) - onehot(t_i)); zero rows where ignored.
GNDET_DECLARE_KERNEL(cross_entropy_backward_kernel,
                     void(const Tensor& dlogits, const Tensor& grad, const Tensor& logits, const Tensor& target,
                          const Tensor& class_weight, int64_t ignore_index));
// out = max(x, 0) - x * t + log(1 + exp(-|x|)) elementwise; out, logits, target: one shape, contiguous.
GNDET_DECLARE_KERNEL(bce_with_logits_kernel, void(const Tensor& out, const Tensor& logits, const Tensor& target));
// dlogits = grad * (sigmoid(x) - t); dtarget = -grad * x (skipped when undefined).
GNDET_DECLARE_KERNEL(bce_with_logits_backward_kernel,
                     void(const Tensor& dlogits, const Tensor& dtarget, const Tensor& grad, const Tensor& logits,
                          const Tensor& target));
// out = |d| < beta ? 0.5 d^2 / beta : |d| - 0.5 beta, d = pred - target (beta == 0: |d|).
GNDET_DECLARE_KERNEL(smooth_l1_kernel,
                     void(const Tensor& out, const Tensor& pred, const Tensor& target, double beta));
// dpred = grad * (|d| < beta ? d / beta : sign(d)).
GNDET_DECLARE_KERNEL(smooth_l1_backward_kernel,
                     void(const Tensor& dpred, const Tensor& grad, const Tensor& pred, const Tensor& target,
                          double beta));

// logits (N, C), target (N) int64; PyTorch F.cross_entropy semantics incl. class weights and ignore_index (mean = sum(w_i * l_i) / sum(w_i) over non-ignored)
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& class_weight = Tensor(),
                     int64_t ignore_index = -100, Reduction reduction = Reduction::Mean);
// logits, target same shape; weight broadcastable elementwise weights or undefined; numerically stable
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& weight = Tensor(),
                                        Reduction reduction = Reduction::Mean);
Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, double beta = 1.0,
                      Reduction reduction = Reduction::Mean);

}  // namespace gndet
