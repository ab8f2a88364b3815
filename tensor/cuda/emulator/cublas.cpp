// cuBLAS on the emulated device: cublasGemmStridedBatchedEx by Eigen's GEMM, in stream order on
// the stream set with cublasSetStream. Whole-model tests need its speed (a naive loop would be
// 20-50x slower). Arguments are validated as cuBLAS does (CUBLAS_STATUS_INVALID_VALUE), and every
// operand's extent is checked against device memory before it is read or written.
//
// Numerics: float32 and float64 as computed by Eigen (its own summation order: parity tests
// carry float tolerances for that); CUBLAS_COMPUTE_32F_FAST_TF32 first rounds each float32
// operand to TF32 (10 mantissa bits, to nearest, ties away from zero, as tensor cores convert);
// bfloat16 / float16 operands are widened exactly, multiplied in float32 and the result rounded
// once to the 16-bit type, to nearest even.
// GCC 12 warns that its own AVX-512 intrinsics use '__Y' uninitialised where Eigen's GEMM kernels
// are inlined with -march=native: a known false positive (GCC bug 105593), as in ops/cpu/linalg.cpp.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#include <omp.h>

#include <cstring>
#include <vector>

#include "tensor/cuda/emulator/internal.h"
#include "tensor/half.h"

#include <cublas_v2.h>

struct cublasContext {
  cudaStream_t stream = nullptr;
};

namespace gndet::cuda::emu {
namespace {

template <class T>
using Mat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
template <class T>
using ConstMap = Eigen::Map<const Mat<T>, 0, Eigen::OuterStride<>>;
template <class T>
using MutMap = Eigen::Map<Mat<T>, 0, Eigen::OuterStride<>>;

size_t type_size(cudaDataType_t t) {
  switch (t) {
    case CUDA_R_32F: return 4;
    case CUDA_R_64F: return 8;
    case CUDA_R_16F:
    case CUDA_R_16BF: return 2;
  }
  return 0;
}

float tf32(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & 0xffffe000u;  // finite: round the low 13 bits away
  std::memcpy(&x, &u, 4);
  return x;
}

// One problem, every size in elements; column-major operands as cuBLAS sees them.
struct Gemm {
  cublasOperation_t ta, tb;
  int m, n, k, lda, ldb, ldc, batch;
  long long sa, sb, sc;
  cudaDataType_t type;
  cublasComputeType_t compute;
  double alpha, beta;
  const char* a;
  const char* b;
  char* c;

  // Elements from an operand's first to its last, for the memory check.
  static size_t extent(bool trans, int rows, int cols, int ld) {
    const int r = trans ? cols : rows, c = trans ? rows : cols;  // as stored
    return r == 0 || c == 0 ? 0 : static_cast<size_t>(c - 1) * ld + r;
  }
};

// Reads an operand (as stored: r x c with leading dimension ld) into a dense float matrix.
Mat<float> widen(const char* p, cudaDataType_t type, int r, int c, int ld, bool to_tf32) {
  Mat<float> out(r, c);
  for (int j = 0; j < c; ++j) {
    for (int i = 0; i < r; ++i) {
      const size_t at = static_cast<size_t>(j) * ld + i;
      float v;
      if (type == CUDA_R_32F) {
        std::memcpy(&v, p + at * 4, 4);
      } else {
        uint16_t bits;
        std::memcpy(&bits, p + at * 2, 2);
        v = type == CUDA_R_16BF ? static_cast<float>(BFloat16::from_bits(bits)) : static_cast<float>(Float16::from_bits(bits));
      }
      out(i, j) = to_tf32 ? tf32(v) : v;
    }
  }
  return out;
}

template <class T>
void gemm_native(const Gemm& g, int batch, int j0, int j1) {
  const T* A = reinterpret_cast<const T*>(g.a) + batch * g.sa;
  const T* B = reinterpret_cast<const T*>(g.b) + batch * g.sb;
  T* C = reinterpret_cast<T*>(g.c) + batch * g.sc;
  const ConstMap<T> a(A, g.ta == CUBLAS_OP_N ? g.m : g.k, g.ta == CUBLAS_OP_N ? g.k : g.m, Eigen::OuterStride<>(g.lda));
  const ConstMap<T> b(B, g.tb == CUBLAS_OP_N ? g.k : g.n, g.tb == CUBLAS_OP_N ? g.n : g.k, Eigen::OuterStride<>(g.ldb));
  MutMap<T> c(C, g.m, g.n, Eigen::OuterStride<>(g.ldc));
  const T alpha = static_cast<T>(g.alpha), beta = static_cast<T>(g.beta);
  auto cols = c.middleCols(j0, j1 - j0);
  auto run = [&](const auto& opa, const auto& opb) {
    if (beta == T(0)) {
      cols.noalias() = alpha * (opa * opb.middleCols(j0, j1 - j0));  // beta 0: C is not read (it may hold NaN)
    } else {
      cols = beta * cols;
      cols.noalias() += alpha * (opa * opb.middleCols(j0, j1 - j0));
    }
  };
  if (g.ta == CUBLAS_OP_N) {
    if (g.tb == CUBLAS_OP_N) run(a, b); else run(a, b.transpose());
  } else {
    if (g.tb == CUBLAS_OP_N) run(a.transpose(), b); else run(a.transpose(), b.transpose());
  }
}

// 16-bit data or TF32: widened copies, a float32 product, one rounding into C's type.
void gemm_widened(const Gemm& g, int batch, int j0, int j1) {
  const size_t es = type_size(g.type);
  const bool to_tf32 = g.compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  const Mat<float> a = widen(g.a + batch * g.sa * es, g.type, g.ta == CUBLAS_OP_N ? g.m : g.k,
                             g.ta == CUBLAS_OP_N ? g.k : g.m, g.lda, to_tf32);
  const Mat<float> b = widen(g.b + batch * g.sb * es, g.type, g.tb == CUBLAS_OP_N ? g.k : g.n,
                             g.tb == CUBLAS_OP_N ? g.n : g.k, g.ldb, to_tf32);
  Mat<float> p;
  if (g.ta == CUBLAS_OP_N) {
    p = g.tb == CUBLAS_OP_N ? Mat<float>(a * b.middleCols(j0, j1 - j0)) : Mat<float>(a * b.transpose().middleCols(j0, j1 - j0));
  } else {
    p = g.tb == CUBLAS_OP_N ? Mat<float>(a.transpose() * b.middleCols(j0, j1 - j0))
                            : Mat<float>(a.transpose() * b.transpose().middleCols(j0, j1 - j0));
  }
  char* C = g.c + batch * g.sc * es;
  const float alpha = static_cast<float>(g.alpha), beta = static_cast<float>(g.beta);
  for (int j = j0; j < j1; ++j) {
    for (int i = 0; i < g.m; ++i) {
      char* at = C + (static_cast<size_t>(j) * g.ldc + i) * es;
      float old = 0.0f;
      if (beta != 0.0f) {
        if (g.type == CUDA_R_32F) {
          std::memcpy(&old, at, 4);
        } else {
          uint16_t bits;
          std::memcpy(&bits, at, 2);
          old = g.type == CUDA_R_16BF ? static_cast<float>(BFloat16::from_bits(bits)) : static_cast<float>(Float16::from_bits(bits));
        }
      }
      const float v = alpha * p(i, j - j0) + (beta != 0.0f ? beta * old : 0.0f);
      if (g.type == CUDA_R_32F) {
        std::memcpy(at, &v, 4);
      } else {
        const uint16_t bits = g.type == CUDA_R_16BF ? BFloat16(v).bits : Float16(v).bits;
        std::memcpy(at, &bits, 2);
      }
    }
  }
}

void run_gemm(const Gemm& g) {
  const size_t es = type_size(g.type);
  for (int i = 0; i < g.batch; ++i) {
    check_device_range(g.a + i * g.sa * es, Gemm::extent(g.ta != CUBLAS_OP_N, g.m, g.k, g.lda) * es,
                       "cublasGemmStridedBatchedEx operand A");
    check_device_range(g.b + i * g.sb * es, Gemm::extent(g.tb != CUBLAS_OP_N, g.k, g.n, g.ldb) * es,
                       "cublasGemmStridedBatchedEx operand B");
    check_device_range(g.c + i * g.sc * es, Gemm::extent(false, g.m, g.n, g.ldc) * es,
                       "cublasGemmStridedBatchedEx output C");
  }
  // Work items: (batch, column range); enough of them to keep the threads busy.
  const int threads = std::max(1, omp_get_max_threads());
  const int splits = g.batch >= threads ? 1 : std::min(g.n, (threads + g.batch - 1) / g.batch);
  const int items = g.batch * std::max(splits, 1);
  const bool widened = g.type == CUDA_R_16F || g.type == CUDA_R_16BF || g.compute == CUBLAS_COMPUTE_32F_FAST_TF32;
#pragma omp parallel for schedule(dynamic) if (items > 1 && static_cast<double>(g.m) * g.n * g.k * g.batch > 1e6)
  for (int it = 0; it < items; ++it) {
    allow_device_access_on_this_thread();  // OpenMP's threads run this work too
    const int batch = it / std::max(splits, 1), part = it % std::max(splits, 1);
    const int j0 = static_cast<int>(static_cast<int64_t>(g.n) * part / std::max(splits, 1));
    const int j1 = static_cast<int>(static_cast<int64_t>(g.n) * (part + 1) / std::max(splits, 1));
    if (j1 <= j0) continue;
    if (widened) {
      gemm_widened(g, batch, j0, j1);
    } else if (g.type == CUDA_R_64F) {
      gemm_native<double>(g, batch, j0, j1);
    } else {
      gemm_native<float>(g, batch, j0, j1);
    }
  }
}

}  // namespace
}  // namespace gndet::cuda::emu

using namespace gndet::cuda::emu;

extern "C" {

cublasStatus_t cublasCreate(cublasHandle_t* handle) {
  if (handle == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *handle = new cublasContext;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete handle;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (stream_for_handle(stream) == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  handle->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t* stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (stream == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *stream = handle->stream;
  return CUBLAS_STATUS_SUCCESS;
}

const char* cublasGetStatusName(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
  }
  return "CUBLAS_STATUS_UNKNOWN";
}

const char* cublasGetStatusString(cublasStatus_t s) {
  switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
  }
  return "unknown status";
}

cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t handle, cublasOperation_t transa, cublasOperation_t transb,
                                          int m, int n, int k, const void* alpha, const void* A, cudaDataType_t Atype,
                                          int lda, long long strideA, const void* B, cudaDataType_t Btype, int ldb,
                                          long long strideB, const void* beta, void* C, cudaDataType_t Ctype, int ldc,
                                          long long strideC, int batchCount, cublasComputeType_t computeType,
                                          cublasGemmAlgo_t) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const auto op_ok = [](cublasOperation_t t) { return t == CUBLAS_OP_N || t == CUBLAS_OP_T; };
  if (!op_ok(transa) || !op_ok(transb) || m < 0 || n < 0 || k < 0 || batchCount < 0 || alpha == nullptr ||
      beta == nullptr) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const int rows_a = transa == CUBLAS_OP_N ? m : k, rows_b = transb == CUBLAS_OP_N ? k : n;
  if (lda < std::max(1, rows_a) || ldb < std::max(1, rows_b) || ldc < std::max(1, m)) return CUBLAS_STATUS_INVALID_VALUE;
  if (Atype != Btype || Atype != Ctype) return CUBLAS_STATUS_NOT_SUPPORTED;
  const bool f32 = Atype == CUDA_R_32F && (computeType == CUBLAS_COMPUTE_32F || computeType == CUBLAS_COMPUTE_32F_FAST_TF32);
  const bool f64 = Atype == CUDA_R_64F && computeType == CUBLAS_COMPUTE_64F;
  const bool half = (Atype == CUDA_R_16F || Atype == CUDA_R_16BF) && computeType == CUBLAS_COMPUTE_32F;
  if (!f32 && !f64 && !half) return CUBLAS_STATUS_NOT_SUPPORTED;
  if (m == 0 || n == 0 || batchCount == 0) return CUBLAS_STATUS_SUCCESS;
  Gemm g{transa, transb, m, n, k, lda, ldb, ldc, batchCount, strideA, strideB, strideC, Atype, computeType, 0, 0,
         static_cast<const char*>(A), static_cast<const char*>(B), static_cast<char*>(C)};
  // Host pointer mode: the scalars are read now, as cuBLAS reads them at the call.
  if (f64) {
    g.alpha = *static_cast<const double*>(alpha);
    g.beta = *static_cast<const double*>(beta);
  } else {
    g.alpha = *static_cast<const float*>(alpha);
    g.beta = *static_cast<const float*>(beta);
  }
  if (k == 0) g.alpha = 0;  // an empty sum: C = beta C
  const cudaError_t e = enqueue_host_work(handle->stream, "cublasGemmStridedBatchedEx", [g] { run_gemm(g); });
  return e == cudaSuccess ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_EXECUTION_FAILED;
}

}  // extern "C"
