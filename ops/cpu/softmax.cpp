#include <cmath>

#include "ops/softmax.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

void softmax_rows_cpu(const Tensor& out, const Tensor& in, bool log) {
  const int64_t M = in.size(0), R = in.size(1);
  dispatch_floating(in.dtype(), "softmax", [&]<class T>() {
    const T* x = static_cast<const T*>(in.raw_data());
    T* y = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (M * R >= cpu::kParallelGrain)
    for (int64_t m = 0; m < M; ++m) {
      const T* row = x + m * R;
      T* o = y + m * R;
      T mx = row[0];
      for (int64_t r = 1; r < R; ++r) mx = row[r] > mx ? row[r] : mx;
      double s = 0.0;
      for (int64_t r = 0; r < R; ++r) s += std::exp(static_cast<double>(row[r] - mx));
      if (log) {
        // (x - max) - log(s): both terms are small, unlike x - (max + log(s)) when |max| is large.
        const T log_s = static_cast<T>(std::log(s));
        for (int64_t r = 0; r < R; ++r) o[r] = (row[r] - mx) - log_s;
      } else {
        const double inv = 1.0 / s;
        for (int64_t r = 0; r < R; ++r) o[r] = static_cast<T>(std::exp(static_cast<double>(row[r] - mx)) * inv);
      }
    }
  });
}

void softmax_backward_rows_cpu(const Tensor& grad_in, const Tensor& grad_out, const Tensor& y, bool log) {
  const int64_t M = y.size(0), R = y.size(1);
  dispatch_floating(y.dtype(), "softmax_backward", [&]<class T>() {
    const T* g = static_cast<const T*>(grad_out.raw_data());
    const T* yy = static_cast<const T*>(y.raw_data());
    T* gi = static_cast<T*>(grad_in.raw_data());
#pragma omp parallel for schedule(static) if (M * R >= cpu::kParallelGrain)
    for (int64_t m = 0; m < M; ++m) {
      const T* gr = g + m * R;
      const T* yr = yy + m * R;
      T* o = gi + m * R;
      double s = 0.0;
      if (log) {
        for (int64_t r = 0; r < R; ++r) s += gr[r];
        for (int64_t r = 0; r < R; ++r) o[r] = static_cast<T>(gr[r] - std::exp(static_cast<double>(yr[r])) * s);
      } else {
        for (int64_t r = 0; r < R; ++r) s += static_cast<double>(gr[r]) * yr[r];
        for (int64_t r = 0; r < R; ++r) o[r] = static_cast<T>(yr[r] * (gr[r] - s));
      }
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(softmax_rows_kernel, CPU, softmax_rows_cpu);
GNDET_REGISTER_KERNEL(softmax_backward_rows_kernel, CPU, softmax_backward_rows_cpu);

}  // namespace gndet
