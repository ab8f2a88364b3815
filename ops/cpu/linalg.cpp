// CPU GEMM: float32 by ops/cpu/gemm.h where the build has its AVX-512 kernel, else (and float64)
// through Eigen maps over our memory (no copies). Eigen parallelises one large product with OpenMP
// itself; a batch of products is spread over threads instead, and Eigen then runs each one
// serially (it does not nest parallel regions).
// With -march=native, GCC 12 warns that its own AVX-512 intrinsics use '__Y' uninitialised where
// Eigen's GEMM kernels are inlined into this file: a known false positive (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>

#include "ops/linalg.h"

#include <algorithm>
#include <omp.h>

#include "ops/cpu/gemm.h"

namespace gndet {
namespace {

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <class T>
using ColMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using Outer = Eigen::OuterStride<>;

template <class T, class F>
void with_matrix(const T* p, int64_t rows, int64_t cols, const MatLayout& l, F&& f) {
  if (l.col_major) {
    f(Eigen::Map<const ColMat<T>, 0, Outer>(p, rows, cols, Outer(l.ld)));
  } else {
    f(Eigen::Map<const RowMat<T>, 0, Outer>(p, rows, cols, Outer(l.ld)));
  }
}

cpu::gemm::Strided strided(const float* p, const MatLayout& l) {
  return l.col_major ? cpu::gemm::Strided{p, 1, l.ld} : cpu::gemm::Strided{p, l.ld, 1};
}

// float32 by gemm.h: a batch spread over the threads, one product split by its columns (whole
// panels of the micro-kernel) or, when it has fewer columns than rows, by its rows.
void bmm_packed(float* out, const float* pa, const float* pb, int64_t B, int64_t M, int64_t N, int64_t K,
                int64_t a_batch_stride, int64_t b_batch_stride, const MatLayout& la, const MatLayout& lb) {
  namespace gemm = cpu::gemm;
  if (B > 1) {
#pragma omp parallel for schedule(dynamic)
    for (int64_t i = 0; i < B; ++i) {
      gemm::sgemm(M, N, K, strided(pa + i * a_batch_stride, la), strided(pb + i * b_batch_stride, lb), out + i * M * N, N, false);
    }
    return;
  }
  const bool by_columns = N >= M;
  const int64_t unit = by_columns ? gemm::kNr : gemm::kMr, units = ((by_columns ? N : M) + unit - 1) / unit;
  const bool parallel = 2.0 * static_cast<double>(M) * static_cast<double>(N) * static_cast<double>(K) >= 1e7 && units > 1;
#pragma omp parallel if (parallel)
  {
    const int threads = omp_get_num_threads(), me = omp_get_thread_num();
    const int64_t end = by_columns ? N : M;
    const int64_t lo = std::min(end, units * me / threads * unit), hi = std::min(end, units * (me + 1) / threads * unit);
    if (hi > lo) {
      if (by_columns) {
        const gemm::Strided b = strided(pb, lb);
        gemm::sgemm(M, hi - lo, K, strided(pa, la), {b.p + lo * b.cs, b.rs, b.cs}, out + lo, N, false);
      } else {
        const gemm::Strided a = strided(pa, la);
        gemm::sgemm(hi - lo, N, K, {a.p + lo * a.rs, a.rs, a.cs}, strided(pb, lb), out + lo * N, N, false);
      }
    }
  }
}

void bmm_cpu(const Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  MatLayout la, lb;
  GNDET_CHECK(gemm_layout(M, K, a.stride(1), a.stride(2), &la) && gemm_layout(K, N, b.stride(1), b.stride(2), &lb),
              "bmm: internal error, operand layout not GEMM-compatible");
  if (a.dtype() == kFloat32 && cpu::gemm::available()) {
    return bmm_packed(static_cast<float*>(out.raw_data()), static_cast<const float*>(a.raw_data()),
                      static_cast<const float*>(b.raw_data()), B, M, N, K, a.stride(0), b.stride(0), la, lb);
  }
  dispatch_floating(a.dtype(), "bmm", [&]<class T>() {
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* po = static_cast<T*>(out.raw_data());
    auto one = [&](int64_t i) {
      Eigen::Map<RowMat<T>> C(po + i * M * N, M, N);
      with_matrix(pa + i * a.stride(0), M, K, la, [&](const auto& A) {
        with_matrix(pb + i * b.stride(0), K, N, lb, [&](const auto& Bm) { C.noalias() = A * Bm; });
      });
    };
    if (B == 1) {
      one(0);
    } else {
#pragma omp parallel for schedule(dynamic)
      for (int64_t i = 0; i < B; ++i) one(i);
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(bmm_kernel, CPU, bmm_cpu);

}  // namespace gndet
