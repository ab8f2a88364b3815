// Fully connected layer, PyTorch's F.linear: y = x @ w^T + b.
//
// linear has no kernels of its own: it runs on bmm_kernel (ops/linalg.h) for the three products
// and sum_cols_kernel (ops/reduce.h) for the bias gradient, so it works on every device those do.
#pragma once

#include "tensor/tensor.h"

namespace gndet {

// x: (..., in); w: (out, in); b: (out) or undefined -> (..., out).
// Differentiable in x, w and b; gradients are computed only for inputs that require them. Under
// autocast (ops/autocast.h) the products run on 16-bit operands, the bias is added in float32.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b);

}  // namespace gndet
