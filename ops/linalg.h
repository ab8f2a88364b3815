// Matrix products. CPU: Eigen's GEMM (OpenMP-parallel); CUDA: cuBLAS.
#pragma once

#include <algorithm>
#include <cstdint>

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

// How a GEMM kernel reads one (rows, cols) matrix with the given strides: row-major (elements of a
// row adjacent) or column-major, with the distance `ld` between rows (columns). Transposed views
// are column-major, so a^T never needs a copy. Returns false when neither layout fits.
struct MatLayout {
  bool col_major = false;
  int64_t ld = 1;
};
inline bool gemm_layout(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride, MatLayout* out) {
  if ((col_stride == 1 || cols == 1) && (rows == 1 || row_stride >= std::max<int64_t>(cols, 1))) {
    *out = {false, rows == 1 ? std::max<int64_t>(cols, 1) : row_stride};
    return true;
  }
  if ((row_stride == 1 || rows == 1) && (cols == 1 || col_stride >= std::max<int64_t>(rows, 1))) {
    *out = {true, cols == 1 ? std::max<int64_t>(rows, 1) : col_stride};
    return true;
  }
  return false;
}

// out: (B, M, N) contiguous; a: (B, M, K); b: (B, K, N). Each matrix of a and b has a layout
// gemm_layout accepts; batch strides are arbitrary. out = a @ b per batch element.
GNDET_DECLARE_KERNEL(bmm_kernel, void(const Tensor& out, const Tensor& a, const Tensor& b));

// (B, M, K) @ (B, K, N) -> (B, M, N). Under autocast (ops/autocast.h) bmm and matmul multiply
// 16-bit operands with float32 accumulation.
Tensor bmm(const Tensor& a, const Tensor& b);
// (M, K) @ (K, N); (..., M, K) @ (K, N) with the leading dims batched; or (..., M, K) @ (..., K, N)
// with equal leading dims.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace gndet
