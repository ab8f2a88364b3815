#include "detection/anchors.h"

#include <cmath>

#include "tensor/factory.h"

namespace gndet {

AnchorGenerator::AnchorGenerator(std::vector<int64_t> strides, std::vector<double> ratios, std::vector<double> scales,
                                 double center_offset)
    : strides_(std::move(strides)), ratios_(std::move(ratios)), scales_(std::move(scales)), center_offset_(center_offset) {
  GNDET_CHECK(!strides_.empty() && !ratios_.empty() && !scales_.empty(),
              "AnchorGenerator: strides, ratios and scales must be non-empty");
  for (double r : ratios_) GNDET_CHECK(r > 0, "AnchorGenerator: ratios must be positive, got ", r);
}

AnchorGenerator AnchorGenerator::from_config(const ConfigNode& cfg) {
  cfg.type({"AnchorGenerator"});
  cfg.check_keys({"type", "strides", "ratios", "scales", "center_offset"});
  return AnchorGenerator(cfg["strides"].as_int_list(), cfg["ratios"].as_double_list(), cfg["scales"].as_double_list(),
                         cfg.get_double("center_offset", 0.0));
}

Tensor AnchorGenerator::base_anchors(int64_t level) const {
  const double base = static_cast<double>(strides_.at(level));
  const double cx = center_offset_ * base, cy = center_offset_ * base;
  std::vector<double> v;
  for (double r : ratios_) {
    const double h_ratio = std::sqrt(r), w_ratio = 1.0 / h_ratio;
    for (double s : scales_) {
      const double w = base * w_ratio * s, h = base * h_ratio * s;
      v.insert(v.end(), {cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h});
    }
  }
  return from_data<double>(v, {num_base_anchors(), 4});
}

Tensor AnchorGenerator::grid_anchors(int64_t level, int64_t height, int64_t width, TensorOptions options) const {
  const auto key = std::make_tuple(level, height, width, static_cast<int>(options.dtype),
                                   static_cast<int>(options.device.type), options.device.index);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
  }
  const std::vector<double> base = base_anchors(level).to_vector<double>();
  const int64_t A = num_base_anchors();
  const double stride = static_cast<double>(strides_.at(level));
  std::vector<double> all(static_cast<size_t>(height * width * A * 4));
  size_t at = 0;
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      const double sx = static_cast<double>(x) * stride, sy = static_cast<double>(y) * stride;
      for (int64_t a = 0; a < A; ++a) {
        all[at++] = base[4 * a] + sx;
        all[at++] = base[4 * a + 1] + sy;
        all[at++] = base[4 * a + 2] + sx;
        all[at++] = base[4 * a + 3] + sy;
      }
    }
  }
  Tensor anchors = from_data<double>(all, {height * width * A, 4}).to(options);
  std::lock_guard<std::mutex> lock(mutex_);
  cache_.emplace(key, anchors);
  return anchors;
}

}  // namespace gndet
