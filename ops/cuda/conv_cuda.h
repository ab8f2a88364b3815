// Internal interface between the CUDA convolution kernels (ops/cuda/conv.cu: dispatch, the own
// im2col + cuBLAS path) and the cuDNN path (ops/cuda/conv_cudnn.cpp, host code only).
#pragma once

#include "gndet_config.h"
#include "ops/conv.h"

namespace gndet::cuda {

#if GNDET_WITH_CUDNN
// Each writes its output (overwriting it) and returns true, or returns false having done nothing
// when cuDNN cannot take the call: a size beyond cuDNN's int range, an output not 16-byte
// aligned, an output size cuDNN computes differently (conv_transpose2d's output_padding), or no
// algorithm that meets the switches (TF32 off, deterministic) within the workspace limit. The
// caller then runs the GEMM path. Operands as in ops/conv.h's kernels.
bool cudnn_conv_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Conv2dParams& p);
bool cudnn_conv_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, const Conv2dParams& p);
bool cudnn_conv_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, const Conv2dParams& p);
#endif

}  // namespace gndet::cuda
