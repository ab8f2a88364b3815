// CUDA batched matrix product (ops/linalg.h) through cublasGemmStridedBatchedEx.
//
// cuBLAS is column-major and our output is row-major: a row-major (M, N) matrix is the
// column-major (N, M) matrix out^T, and out^T = b^T a^T. So cuBLAS computes C = op(b) op(a) with
// m = N, n = M, k = K, where each operand is read as stored: a row-major operand seen
// column-major is already its transpose (CUBLAS_OP_N); a column-major one (a transposed view)
// needs CUBLAS_OP_T. No operand is ever copied.
//
// float32 runs in FP32 or, when cuda::allow_tf32() (the default), on TF32 tensor cores; float64
// in FP64; autocast's bfloat16 / float16 operands on tensor cores with float32 accumulation.
#include <climits>

#include "ops/linalg.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

int as_int(int64_t v, const char* what, const Tensor& a, const Tensor& b) {
  GNDET_CHECK(v <= INT_MAX, "bmm: ", what, " = ", v, " exceeds cuBLAS's int range for operands ", shape_str(a.shape()),
              " and ", shape_str(b.shape()));
  return static_cast<int>(v);
}

void bmm_cuda(const Tensor& out, const Tensor& a, const Tensor& b) {
  cuda::require_device("bmm", out.device(), {&a, &b});
  const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  if (B == 0 || M == 0 || N == 0) return;
  GNDET_CHECK(K > 0, "bmm: internal error, K = 0 reaches the CUDA kernel");  // bmm_raw zero-fills that case
  MatLayout la, lb;
  GNDET_CHECK(gemm_layout(M, K, a.stride(1), a.stride(2), &la) && gemm_layout(K, N, b.stride(1), b.stride(2), &lb),
              "bmm: internal error, operand layout not GEMM-compatible");
  const int dev = out.device().index;
  cuda::DeviceGuard guard(dev);
  cuda::CublasLease blas(dev);

  const cublasOperation_t op_b = lb.col_major ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = la.col_major ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = as_int(N, "N", a, b), n = as_int(M, "M", a, b), k = as_int(K, "K", a, b);
  const int ld_b = as_int(lb.ld, "leading dimension of b", a, b), ld_a = as_int(la.ld, "leading dimension of a", a, b);
  const int batch = as_int(B, "batch", a, b);
  const long long stride_b = b.stride(0), stride_a = a.stride(0), stride_c = M * N;

  if (a.dtype() == kFloat32) {
    const float alpha = 1.0f, beta = 0.0f;
    const cublasComputeType_t compute = cuda::allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    GNDET_CUBLAS_CHECK(cublasGemmStridedBatchedEx(blas.get(), op_b, op_a, m, n, k, &alpha, b.raw_data(), CUDA_R_32F, ld_b,
                                                  stride_b, a.raw_data(), CUDA_R_32F, ld_a, stride_a, &beta,
                                                  out.raw_data(), CUDA_R_32F, m, stride_c, batch, compute,
                                                  CUBLAS_GEMM_DEFAULT));
  } else if (a.dtype() == kFloat64) {
    const double alpha = 1.0, beta = 0.0;
    GNDET_CUBLAS_CHECK(cublasGemmStridedBatchedEx(blas.get(), op_b, op_a, m, n, k, &alpha, b.raw_data(), CUDA_R_64F, ld_b,
                                                  stride_b, a.raw_data(), CUDA_R_64F, ld_a, stride_a, &beta,
                                                  out.raw_data(), CUDA_R_64F, m, stride_c, batch, CUBLAS_COMPUTE_64F,
                                                  CUBLAS_GEMM_DEFAULT));
  } else if (is_reduced_float(a.dtype())) {
    // Autocast's operands (ops/autocast.h): 16-bit in and out, float32 accumulation, tensor cores.
    const float alpha = 1.0f, beta = 0.0f;
    const cudaDataType_t t = a.dtype() == kBFloat16 ? CUDA_R_16BF : CUDA_R_16F;
    GNDET_CUBLAS_CHECK(cublasGemmStridedBatchedEx(blas.get(), op_b, op_a, m, n, k, &alpha, b.raw_data(), t, ld_b,
                                                  stride_b, a.raw_data(), t, ld_a, stride_a, &beta, out.raw_data(), t,
                                                  m, stride_c, batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  } else {
    GNDET_FAIL("bmm: expected a float32, float64, bfloat16 or float16 tensor, got ", dtype_name(a.dtype()));
  }
}

}  // namespace

GNDET_REGISTER_KERNEL(bmm_kernel, CUDA, bmm_cuda);

}  // namespace gndet
