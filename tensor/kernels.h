// Kernels the tensor layer itself needs: fill and strided copy with dtype conversion.
// The CPU versions live in cpu_kernels.cpp, the CUDA versions in cuda/copy.cu.
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

// dst[...] = value, converted to dst's dtype. dst may be any strided view.
GNDET_DECLARE_KERNEL(fill_kernel, void(const Tensor& dst, double value));
// dst[...] = src[...] broadcast to dst's shape, converted to dst's dtype. Registered for CUDA, the
// kernel also handles host <-> device copies (either side may be on the CPU).
GNDET_DECLARE_KERNEL(copy_kernel, void(const Tensor& dst, const Tensor& src));

}  // namespace gndet
