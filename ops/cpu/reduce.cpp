// CPU reduction kernels. Floats accumulate in double, integers in int64.
#include <cmath>
#include <type_traits>

#include <omp.h>

#include "ops/reduce.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

template <class T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;

void sum_rows_cpu(const Tensor& out, const Tensor& in, double scale) {
  const int64_t M = in.size(0), R = in.size(1);
  dispatch_numeric(in.dtype(), "sum", [&]<class T>() {
    const T* x = static_cast<const T*>(in.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    if (M >= 2 * omp_get_max_threads() || M * R < cpu::kParallelGrain) {
#pragma omp parallel for schedule(static) if (M * R >= cpu::kParallelGrain)
      for (int64_t m = 0; m < M; ++m) {
        Acc<T> s = 0;
        const T* row = x + m * R;
        for (int64_t r = 0; r < R; ++r) s += row[r];
        o[m] = static_cast<T>(s * scale);
      }
    } else {
      // Few long rows (e.g. a full sum): split each row across threads.
      for (int64_t m = 0; m < M; ++m) {
        Acc<T> s = 0;
        const T* row = x + m * R;
#pragma omp parallel for reduction(+ : s) schedule(static)
        for (int64_t r = 0; r < R; ++r) s += row[r];
        o[m] = static_cast<T>(s * scale);
      }
    }
  });
}

void sum_cols_cpu(const Tensor& out, const Tensor& in, double scale) {
  const int64_t R = in.size(0), N = in.size(1);
  dispatch_numeric(in.dtype(), "sum", [&]<class T>() {
    const T* x = static_cast<const T*>(in.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    constexpr int64_t kBlock = 256;  // columns per task: an accumulator block that stays in L1
    const int64_t nblocks = (N + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (R * N >= cpu::kParallelGrain)
    for (int64_t b = 0; b < nblocks; ++b) {
      const int64_t n0 = b * kBlock, n1 = std::min(N, n0 + kBlock);
      Acc<T> acc[kBlock] = {};
      for (int64_t r = 0; r < R; ++r) {
        const T* row = x + r * N;
        for (int64_t n = n0; n < n1; ++n) acc[n - n0] += row[n];
      }
      for (int64_t n = n0; n < n1; ++n) o[n] = static_cast<T>(acc[n - n0] * scale);
    }
  });
}

void var_rows_cpu(const Tensor& out, const Tensor& in, double ddof) {
  const int64_t M = in.size(0), R = in.size(1);
  dispatch_floating(in.dtype(), "var", [&]<class T>() {
    const T* x = static_cast<const T*>(in.raw_data());
    T* o = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (M * R >= cpu::kParallelGrain)
    for (int64_t m = 0; m < M; ++m) {
      const T* row = x + m * R;
      double mean = 0.0;
      for (int64_t r = 0; r < R; ++r) mean += row[r];
      mean /= static_cast<double>(R);
      double ss = 0.0;
      for (int64_t r = 0; r < R; ++r) ss += (row[r] - mean) * (row[r] - mean);
      o[m] = static_cast<T>(ss / (static_cast<double>(R) - ddof));
    }
  });
}

void extremum_rows_cpu(const Tensor& values, const Tensor& indices, const Tensor& in, bool is_max) {
  const int64_t M = in.size(0), R = in.size(1);
  dispatch_numeric(in.dtype(), is_max ? "max" : "min", [&]<class T>() {
    const T* x = static_cast<const T*>(in.raw_data());
    T* v = static_cast<T*>(values.raw_data());
    int64_t* idx = static_cast<int64_t*>(indices.raw_data());
#pragma omp parallel for schedule(static) if (M * R >= cpu::kParallelGrain)
    for (int64_t m = 0; m < M; ++m) {
      const T* row = x + m * R;
      int64_t best = 0;
      for (int64_t r = 1; r < R; ++r) {
        if constexpr (std::is_floating_point_v<T>) {
          if (std::isnan(row[best])) break;  // NaN wins and stays
          if (std::isnan(row[r])) {
            best = r;
            break;
          }
        }
        if (is_max ? row[r] > row[best] : row[r] < row[best]) best = r;
      }
      v[m] = row[best];
      idx[m] = best;
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(sum_rows_kernel, CPU, sum_rows_cpu);
GNDET_REGISTER_KERNEL(sum_cols_kernel, CPU, sum_cols_cpu);
GNDET_REGISTER_KERNEL(var_rows_kernel, CPU, var_rows_cpu);
GNDET_REGISTER_KERNEL(extremum_rows_kernel, CPU, extremum_rows_cpu);

}  // namespace gndet
