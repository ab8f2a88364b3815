// CPU GEMM through Eigen maps over our memory (no copies). Eigen parallelises one large product
// with OpenMP itself; a batch of products is spread over threads instead, and Eigen then runs
// each one serially (it does not nest parallel regions).
// With -march=native, GCC 12 warns that its own AVX-512 intrinsics use '__Y' uninitialised where
// Eigen's GEMM kernels are inlined into this file: a known false positive (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>

#include "ops/linalg.h"

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

void bmm_cpu(const Tensor& out, const Tensor& a, const Tensor& b) {
  const int64_t B = a.size(0), M = a.size(1), K = a.size(2), N = b.size(2);
  MatLayout la, lb;
  GNDET_CHECK(gemm_layout(M, K, a.stride(1), a.stride(2), &la) && gemm_layout(K, N, b.stride(1), b.stride(2), &lb),
              "bmm: internal error, operand layout not GEMM-compatible");
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
