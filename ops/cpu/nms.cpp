#include <algorithm>
#include <vector>

#include "ops/nms.h"
#include "tensor/factory.h"

namespace gndet {
namespace {

Tensor nms_sorted_cpu(const Tensor& boxes, double iou_threshold) {
  const int64_t K = boxes.size(0);
  std::vector<int64_t> keep;
  dispatch_floating(boxes.dtype(), "nms", [&]<class T>() {
    const T* b = static_cast<const T*>(boxes.raw_data());
    std::vector<char> suppressed(static_cast<size_t>(K), 0);
    std::vector<T> area(static_cast<size_t>(K));
    for (int64_t i = 0; i < K; ++i) area[i] = (b[4 * i + 2] - b[4 * i]) * (b[4 * i + 3] - b[4 * i + 1]);
    for (int64_t i = 0; i < K; ++i) {
      if (suppressed[i]) continue;
      keep.push_back(i);
      const T* p = b + 4 * i;
      for (int64_t j = i + 1; j < K; ++j) {
        if (suppressed[j]) continue;
        const T* q = b + 4 * j;
        const T w = std::max(std::min(p[2], q[2]) - std::max(p[0], q[0]), T(0));
        const T h = std::max(std::min(p[3], q[3]) - std::max(p[1], q[1]), T(0));
        const T inter = w * h;
        const T iou = inter / std::max(area[i] + area[j] - inter, T(1e-6));
        if (iou > static_cast<T>(iou_threshold)) suppressed[j] = 1;
      }
    }
  });
  return from_data<int64_t>(keep);
}

}  // namespace

GNDET_REGISTER_KERNEL(nms_sorted_kernel, CPU, nms_sorted_cpu);

}  // namespace gndet
