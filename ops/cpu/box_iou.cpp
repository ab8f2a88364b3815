#include <algorithm>

#include "ops/box_iou.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

void box_overlaps_cpu(const Tensor& out, const Tensor& a, const Tensor& b, OverlapMode mode) {
  const int64_t N = a.size(0), M = b.size(0);
  dispatch_floating(a.dtype(), "box_iou", [&]<class T>() {
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    const T eps = T(1e-6);
#pragma omp parallel for schedule(static) if (N * M >= cpu::kParallelGrain)
    for (int64_t i = 0; i < N; ++i) {
      const T* p = pa + 4 * i;
      const T area_a = (p[2] - p[0]) * (p[3] - p[1]);
      for (int64_t j = 0; j < M; ++j) {
        const T* q = pb + 4 * j;
        const T w = std::max(std::min(p[2], q[2]) - std::max(p[0], q[0]), T(0));
        const T h = std::max(std::min(p[3], q[3]) - std::max(p[1], q[1]), T(0));
        const T inter = w * h;
        const T denom = mode == OverlapMode::IoU ? area_a + (q[2] - q[0]) * (q[3] - q[1]) - inter : area_a;
        o[i * M + j] = inter / std::max(denom, eps);
      }
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(box_overlaps_kernel, CPU, box_overlaps_cpu);

}  // namespace gndet
