// CPU resizing. The source positions of every output row and column are computed once per call;
// the forward runs one task per output row, the backward one task per (n, c) plane so that its
// scatter never races.
#include <vector>

#include "ops/resize.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

struct Planes {
  int64_t count, H, W, Ho, Wo;
};
Planes planes_of(const Tensor& small_or_in, const Tensor& out) {
  return {small_or_in.size(0) * small_or_in.size(1), small_or_in.size(2), small_or_in.size(3), out.size(2),
          out.size(3)};
}

std::vector<int64_t> nearest_sources(int64_t in, int64_t out) {
  std::vector<int64_t> s(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) s[i] = resize::nearest_source(i, in, out);
  return s;
}

std::vector<resize::LinearTap> linear_taps(int64_t in, int64_t out, bool align_corners) {
  std::vector<resize::LinearTap> t(static_cast<size_t>(out));
  for (int64_t i = 0; i < out; ++i) t[i] = resize::linear_tap(i, in, out, align_corners);
  return t;
}

void upsample_nearest_cpu(const Tensor& out, const Tensor& x) {
  const Planes p = planes_of(x, out);
  const auto sh = nearest_sources(p.H, p.Ho), sw = nearest_sources(p.W, p.Wo);
  dispatch_floating(x.dtype(), "upsample_nearest", [&]<class T>() {
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (out.numel() >= cpu::kParallelGrain)
    for (int64_t r = 0; r < p.count * p.Ho; ++r) {
      const int64_t q = r / p.Ho, oh = r % p.Ho;
      const T* src = in + (q * p.H + sh[oh]) * p.W;
      T* dst = o + r * p.Wo;
      for (int64_t ow = 0; ow < p.Wo; ++ow) dst[ow] = src[sw[ow]];
    }
  });
}

void upsample_nearest_backward_cpu(const Tensor& dx, const Tensor& dy) {
  const Planes p = planes_of(dx, dy);
  const auto sh = nearest_sources(p.H, p.Ho), sw = nearest_sources(p.W, p.Wo);
  dispatch_floating(dx.dtype(), "upsample_nearest_backward", [&]<class T>() {
    T* gx = static_cast<T*>(dx.raw_data());
    const T* gy = static_cast<const T*>(dy.raw_data());
#pragma omp parallel for schedule(static) if (dy.numel() >= cpu::kParallelGrain)
    for (int64_t q = 0; q < p.count; ++q) {
      T* plane = gx + q * p.H * p.W;
      std::fill(plane, plane + p.H * p.W, T(0));
      for (int64_t oh = 0; oh < p.Ho; ++oh) {
        T* row = plane + sh[oh] * p.W;
        const T* g = gy + (q * p.Ho + oh) * p.Wo;
        for (int64_t ow = 0; ow < p.Wo; ++ow) row[sw[ow]] += g[ow];
      }
    }
  });
}

void interpolate_bilinear_cpu(const Tensor& out, const Tensor& x, bool align_corners) {
  const Planes p = planes_of(x, out);
  const auto th = linear_taps(p.H, p.Ho, align_corners), tw = linear_taps(p.W, p.Wo, align_corners);
  dispatch_floating(x.dtype(), "interpolate_bilinear", [&]<class T>() {
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (out.numel() >= cpu::kParallelGrain)
    for (int64_t r = 0; r < p.count * p.Ho; ++r) {
      const int64_t q = r / p.Ho;
      const resize::LinearTap& h = th[r % p.Ho];
      const T* top = in + (q * p.H + h.i0) * p.W;
      const T* bottom = in + (q * p.H + h.i1) * p.W;
      T* dst = o + r * p.Wo;
      for (int64_t ow = 0; ow < p.Wo; ++ow) {
        const resize::LinearTap& w = tw[ow];
        const double v = h.w0 * (w.w0 * top[w.i0] + w.w1 * top[w.i1]) + h.w1 * (w.w0 * bottom[w.i0] + w.w1 * bottom[w.i1]);
        dst[ow] = static_cast<T>(v);
      }
    }
  });
}

void interpolate_bilinear_backward_cpu(const Tensor& dx, const Tensor& dy, bool align_corners) {
  const Planes p = planes_of(dx, dy);
  const auto th = linear_taps(p.H, p.Ho, align_corners), tw = linear_taps(p.W, p.Wo, align_corners);
  dispatch_floating(dx.dtype(), "interpolate_bilinear_backward", [&]<class T>() {
    T* gx = static_cast<T*>(dx.raw_data());
    const T* gy = static_cast<const T*>(dy.raw_data());
#pragma omp parallel for schedule(static) if (dy.numel() >= cpu::kParallelGrain)
    for (int64_t q = 0; q < p.count; ++q) {
      T* plane = gx + q * p.H * p.W;
      std::fill(plane, plane + p.H * p.W, T(0));
      for (int64_t oh = 0; oh < p.Ho; ++oh) {
        const resize::LinearTap& h = th[oh];
        T* top = plane + h.i0 * p.W;
        T* bottom = plane + h.i1 * p.W;
        const T* g = gy + (q * p.Ho + oh) * p.Wo;
        for (int64_t ow = 0; ow < p.Wo; ++ow) {
          const resize::LinearTap& w = tw[ow];
          top[w.i0] += static_cast<T>(h.w0 * w.w0 * g[ow]);
          top[w.i1] += static_cast<T>(h.w0 * w.w1 * g[ow]);
          bottom[w.i0] += static_cast<T>(h.w1 * w.w0 * g[ow]);
          bottom[w.i1] += static_cast<T>(h.w1 * w.w1 * g[ow]);
        }
      }
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(upsample_nearest_kernel, CPU, upsample_nearest_cpu);
GNDET_REGISTER_KERNEL(upsample_nearest_backward_kernel, CPU, upsample_nearest_backward_cpu);
GNDET_REGISTER_KERNEL(interpolate_bilinear_kernel, CPU, interpolate_bilinear_cpu);
GNDET_REGISTER_KERNEL(interpolate_bilinear_backward_kernel, CPU, interpolate_bilinear_backward_cpu);

}  // namespace gndet
