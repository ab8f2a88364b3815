// The per-pixel sampling of paste_masks, shared by the CPU and CUDA kernels.
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/elementwise_functors.h"  // GNDET_HD

namespace gndet::paste {

// Bilinear sample of an M x M map at (v, u) (map pixel coordinates, centres at integers), with
// zero padding: a neighbour outside the map contributes 0, like grid_sample's "zeros" mode.
template <class T>
GNDET_HD T sample(const T* map, int64_t M, T v, T u) {
  const T fv = ew::m_floor(v), fu = ew::m_floor(u);
  const int64_t v0 = static_cast<int64_t>(fv), u0 = static_cast<int64_t>(fu);
  const T lv = v - fv, lu = u - fu;
  T acc = 0;
  for (int dv = 0; dv < 2; ++dv) {
    const int64_t y = v0 + dv;
    if (y < 0 || y >= M) continue;
    const T wv = dv ? lv : T(1) - lv;
    for (int du = 0; du < 2; ++du) {
      const int64_t x = u0 + du;
      if (x < 0 || x >= M) continue;
      acc += wv * (du ? lu : T(1) - lu) * map[y * M + x];
    }
  }
  return acc;
}

// Map coordinate of image pixel `p` (centre p + 0.5) for a box spanning [lo, hi] over M cells.
template <class T>
GNDET_HD T map_coord(int64_t p, T lo, T hi, int64_t M) {
  return (static_cast<T>(p) + T(0.5) - lo) / (hi - lo) * static_cast<T>(M) - T(0.5);
}

// The image pixels worth visiting: one beyond the box on each side, clamped to the image.
template <class T>
GNDET_HD void pixel_range(T lo, T hi, int64_t size, int64_t* first, int64_t* end) {
  int64_t a = static_cast<int64_t>(ew::m_floor(lo)) - 1, b = static_cast<int64_t>(ew::m_ceil(hi)) + 1;
  *first = a < 0 ? 0 : a;
  *end = b > size ? size : b;
}

}  // namespace gndet::paste
