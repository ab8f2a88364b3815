// The sampling arithmetic of RoIAlign, shared by the CPU and CUDA kernels so both compute the
// same sample positions and bilinear weights.
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/elementwise_functors.h"  // GNDET_HD
#include "ops/roi_align.h"

namespace gndet::roi {

// One RoI mapped onto the feature map.
template <class T>
struct Geometry {
  int64_t batch;
  T start_h, start_w;  // top-left corner in feature-map pixels
  T bin_h, bin_w;      // bin size
  int64_t grid_h, grid_w;  // samples per bin along each axis
  T count;             // grid_h * grid_w, at least 1
};

template <class T>
GNDET_HD Geometry<T> geometry(const T* roi, const RoIAlignParams& p) {
  Geometry<T> g;
  g.batch = static_cast<int64_t>(roi[0]);
  const T offset = p.aligned ? T(0.5) : T(0);
  const T scale = static_cast<T>(p.spatial_scale);
  g.start_w = roi[1] * scale - offset;
  g.start_h = roi[2] * scale - offset;
  T width = roi[3] * scale - offset - g.start_w;
  T height = roi[4] * scale - offset - g.start_h;
  if (!p.aligned) {  // Detectron's legacy behaviour: force malformed RoIs to 1x1
    width = width > T(1) ? width : T(1);
    height = height > T(1) ? height : T(1);
  }
  g.bin_h = height / static_cast<T>(p.out_h);
  g.bin_w = width / static_cast<T>(p.out_w);
  g.grid_h = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(ew::m_ceil(height / static_cast<T>(p.out_h)));
  g.grid_w = p.sampling_ratio > 0 ? p.sampling_ratio : static_cast<int64_t>(ew::m_ceil(width / static_cast<T>(p.out_w)));
  const int64_t n = g.grid_h * g.grid_w;
  g.count = static_cast<T>(n > 1 ? n : 1);
  return g;
}

// Where a sample coordinate v falls along one axis of n pixels: its two neighbours lo <= hi and
// their weights h (for lo) and l (for hi). Outside [-1, n] the sample contributes nothing.
// RoIAlign's bilinear weights are separable, so the CPU kernel computes these once per row and
// column of samples and shares them across channels.
template <class T>
struct AxisSample {
  int64_t lo, hi;
  T l, h;
  bool inside;
};

template <class T>
GNDET_HD AxisSample<T> axis_sample(T v, int64_t n) {
  AxisSample<T> a{0, 0, T(0), T(0), false};
  if (v < T(-1) || v > static_cast<T>(n)) return a;
  a.inside = true;
  if (v <= T(0)) v = T(0);
  a.lo = static_cast<int64_t>(v);
  if (a.lo >= n - 1) {
    a.lo = a.hi = n - 1;
    v = static_cast<T>(a.lo);
  } else {
    a.hi = a.lo + 1;
  }
  a.l = v - static_cast<T>(a.lo);
  a.h = T(1) - a.l;
  return a;
}

// Bilinear weights of the four neighbours of (y, x) on an H x W map. Returns false when the
// sample lies outside [-1, H] x [-1, W] and contributes nothing.
template <class T>
struct Bilinear {
  int64_t y0, x0, y1, x1;
  T w00, w01, w10, w11;
};

template <class T>
GNDET_HD bool bilinear(T y, T x, int64_t H, int64_t W, Bilinear<T>* b) {
  const AxisSample<T> ay = axis_sample(y, H), ax = axis_sample(x, W);
  if (!ay.inside || !ax.inside) return false;
  b->y0 = ay.lo;
  b->y1 = ay.hi;
  b->x0 = ax.lo;
  b->x1 = ax.hi;
  b->w00 = ay.h * ax.h;
  b->w01 = ay.h * ax.l;
  b->w10 = ay.l * ax.h;
  b->w11 = ay.l * ax.l;
  return true;
}

// Centre of sample (iy, ix) of bin (ph, pw).
template <class T>
GNDET_HD T sample_y(const Geometry<T>& g, int64_t ph, int64_t iy) {
  return g.start_h + static_cast<T>(ph) * g.bin_h + (static_cast<T>(iy) + T(0.5)) * g.bin_h / static_cast<T>(g.grid_h);
}
template <class T>
GNDET_HD T sample_x(const Geometry<T>& g, int64_t pw, int64_t ix) {
  return g.start_w + static_cast<T>(pw) * g.bin_w + (static_cast<T>(ix) + T(0.5)) * g.bin_w / static_cast<T>(g.grid_w);
}

}  // namespace gndet::roi
