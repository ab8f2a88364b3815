#include "ops/paste_masks.h"
#include "ops/paste_masks_math.h"

namespace gndet {
namespace {

void paste_masks_cpu(const Tensor& out, const Tensor& probs, const Tensor& boxes, double threshold) {
  const int64_t D = probs.size(0), M = probs.size(1), H = out.size(1), W = out.size(2);
  dispatch_floating(probs.dtype(), "paste_masks", [&]<class T>() {
    const T* p = static_cast<const T*>(probs.raw_data());
    const T* b = static_cast<const T*>(boxes.raw_data());
    uint8_t* o = static_cast<uint8_t*>(out.raw_data());
#pragma omp parallel for schedule(dynamic)
    for (int64_t d = 0; d < D; ++d) {
      const T x0 = b[4 * d], y0 = b[4 * d + 1], x1 = b[4 * d + 2], y1 = b[4 * d + 3];
      if (!(x1 > x0) || !(y1 > y0)) continue;  // a degenerate box pastes nothing
      int64_t ya, yb, xa, xb;
      paste::pixel_range(y0, y1, H, &ya, &yb);
      paste::pixel_range(x0, x1, W, &xa, &xb);
      const T* map = p + d * M * M;
      uint8_t* img = o + d * H * W;
      for (int64_t y = ya; y < yb; ++y) {
        const T v = paste::map_coord(y, y0, y1, M);
        for (int64_t x = xa; x < xb; ++x) {
          const T u = paste::map_coord(x, x0, x1, M);
          img[y * W + x] = paste::sample(map, M, v, u) >= static_cast<T>(threshold) ? 1 : 0;
        }
      }
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(paste_masks_kernel, CPU, paste_masks_cpu);

}  // namespace gndet
