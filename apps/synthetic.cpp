#include "apps/synthetic.h"

#include <algorithm>

#include "tensor/factory.h"
#include "tensor/random.h"

namespace gndet::app {

SyntheticBatch synthetic_batch(int64_t height, int64_t width, int64_t num_classes, bool with_mask) {
  SyntheticBatch b;
  Generator gen(0);
  b.images = randn({1, 3, height, width}, gen);
  const double h = static_cast<double>(height), w = static_cast<double>(width);
  const std::vector<float> boxes = {static_cast<float>(0.1 * w), static_cast<float>(0.15 * h), static_cast<float>(0.5 * w),
                                    static_cast<float>(0.6 * h), static_cast<float>(0.4 * w),  static_cast<float>(0.3 * h),
                                    static_cast<float>(0.9 * w), static_cast<float>(0.85 * h)};
  ImageTargets t;
  t.boxes = from_data<float>(boxes, {2, 4});
  t.labels = from_data<int64_t>({0, std::min<int64_t>(1, num_classes - 1)});
  if (with_mask) {
    std::vector<uint8_t> m(static_cast<size_t>(2 * height * width), 0);
    for (int64_t g = 0; g < 2; ++g) {
      for (int64_t y = static_cast<int64_t>(boxes[4 * g + 1]); y < static_cast<int64_t>(boxes[4 * g + 3]); ++y) {
        for (int64_t x = static_cast<int64_t>(boxes[4 * g]); x < static_cast<int64_t>(boxes[4 * g + 2]); ++x) {
          m[static_cast<size_t>((g * height + y) * width + x)] = 1;
        }
      }
    }
    t.masks = from_data<uint8_t>(m, {2, height, width});
  }
  b.targets.push_back(t);
  ImageInfo info;
  info.image_id = 0;
  info.height = info.pad_height = info.ori_height = height;
  info.width = info.pad_width = info.ori_width = width;
  b.infos.push_back(info);
  return b;
}

}  // namespace gndet::app
