// CPU max pooling: one task per (n, c) plane, so the backward scatter never races.
#include <cmath>
#include <limits>

#include "ops/pool.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

void max_pool2d_cpu(const Tensor& out, const Tensor& indices, const Tensor& x, Pool2dParams p) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = out.size(2), Wo = out.size(3);
  dispatch_floating(x.dtype(), "max_pool2d", [&]<class T>() {
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    int64_t* idx = static_cast<int64_t*>(indices.raw_data());
#pragma omp parallel for schedule(static) if (out.numel() * p.kernel[0] * p.kernel[1] >= cpu::kParallelGrain)
    for (int64_t q = 0; q < planes; ++q) {
      const T* plane = in + q * H * W;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const int64_t h0 = oh * p.stride[0] - p.padding[0];
        const int64_t h_lo = std::max<int64_t>(h0, 0), h_hi = std::min(h0 + p.kernel[0], H);
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t w0 = ow * p.stride[1] - p.padding[1];
          const int64_t w_lo = std::max<int64_t>(w0, 0), w_hi = std::min(w0 + p.kernel[1], W);
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_at = h_lo * W + w_lo;  // every window overlaps the input (see pooled_size)
          bool found_nan = false;
          for (int64_t ih = h_lo; ih < h_hi && !found_nan; ++ih) {
            for (int64_t iw = w_lo; iw < w_hi; ++iw) {
              const T v = plane[ih * W + iw];
              if (v > best || std::isnan(v)) {
                best = v;
                best_at = ih * W + iw;
                found_nan = std::isnan(v);  // NaN wins and stays, as in PyTorch
                if (found_nan) break;
              }
            }
          }
          o[(q * Ho + oh) * Wo + ow] = best;
          idx[(q * Ho + oh) * Wo + ow] = best_at;
        }
      }
    }
  });
}

void max_pool2d_backward_cpu(const Tensor& dx, const Tensor& dy, const Tensor& indices) {
  const int64_t planes = dx.size(0) * dx.size(1), HW = dx.size(2) * dx.size(3);
  const int64_t P = dy.size(2) * dy.size(3);
  dispatch_floating(dx.dtype(), "max_pool2d_backward", [&]<class T>() {
    T* gx = static_cast<T*>(dx.raw_data());
    const T* gy = static_cast<const T*>(dy.raw_data());
    const int64_t* idx = static_cast<const int64_t*>(indices.raw_data());
#pragma omp parallel for schedule(static) if (dx.numel() >= cpu::kParallelGrain)
    for (int64_t q = 0; q < planes; ++q) {
      T* plane = gx + q * HW;
      std::fill(plane, plane + HW, T(0));
      for (int64_t k = 0; k < P; ++k) plane[idx[q * P + k]] += gy[q * P + k];
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(max_pool2d_kernel, CPU, max_pool2d_cpu);
GNDET_REGISTER_KERNEL(max_pool2d_backward_kernel, CPU, max_pool2d_backward_cpu);

}  // namespace gndet
