// silu(x) = x * sigmoid(x) (also called swish): an op that gndet itself lacks, added from outside
// the library the way gndet's own ops are built (ops/<family>.h, .cpp, cpu/<family>.cpp and
// checks/<family>.cpp in the gndet sources).
//
//   d silu / dx = s + x * s * (1 - s),   s = sigmoid(x)
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace custom_op {

using gndet::Tensor;

// The kernel slots, one function per device type, filled by silu_cpu.cpp for the CPU. A CUDA
// kernel would register itself in the same slots from a .cu file; without one, a CUDA tensor
// fails with "silu_forward_kernel: no kernel for device cuda:0".
// y, x: contiguous, same shape and floating dtype; y = silu(x).
GNDET_DECLARE_KERNEL(silu_forward_kernel, void(const Tensor& y, const Tensor& x));
// grad_x, grad_y, x: contiguous, same shape; grad_x = grad_y * silu'(x).
GNDET_DECLARE_KERNEL(silu_backward_kernel, void(const Tensor& grad_x, const Tensor& grad_y, const Tensor& x));

// Differentiable: records its backward in the autograd graph when x requires grad.
Tensor silu(const Tensor& x);

}  // namespace custom_op
