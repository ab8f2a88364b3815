// Anchor generation, mmdetection's AnchorGenerator (v2+ semantics).
//
// Level l has base size = stride_l. Its base anchors are centred on (offset * stride), with
// h = base * scale * sqrt(ratio) and w = base * scale / sqrt(ratio), no "+1" in widths; they
// are ordered ratio-major (all scales of ratio 0, then ratio 1, ...). A feature map of H x W
// repeats them at every (x * stride, y * stride): anchor (y * W + x) * A + a, which is also how
// the head's outputs are flattened (N, A*k, H, W) -> (N, H, W, A, k).
//
// Example: stride 4, scale 8, ratios (0.5, 1, 2) gives the first three anchors
//   (-22.63, -11.31, 22.63, 11.31), (-16, -16, 16, 16), (-11.31, -22.63, 11.31, 22.63).
#pragma once

#include <map>
#include <mutex>
#include <tuple>
#include <vector>

#include "tensor/config.h"
#include "tensor/tensor.h"

namespace gndet {

class AnchorGenerator {
 public:
  AnchorGenerator(std::vector<int64_t> strides, std::vector<double> ratios, std::vector<double> scales,
                  double center_offset = 0.0);
  // {"type": "AnchorGenerator", "strides": [...], "ratios": [...], "scales": [...], "center_offset": 0}
  static AnchorGenerator from_config(const ConfigNode& cfg);

  int64_t num_levels() const { return static_cast<int64_t>(strides_.size()); }
  int64_t num_base_anchors() const { return static_cast<int64_t>(ratios_.size() * scales_.size()); }
  int64_t stride(int64_t level) const { return strides_.at(level); }

  // (A, 4) float64 on the CPU.
  Tensor base_anchors(int64_t level) const;
  // (H * W * A, 4) for a feature map of H x W at `level`; cached per (level, H, W, options).
  Tensor grid_anchors(int64_t level, int64_t height, int64_t width, TensorOptions options) const;

 private:
  std::vector<int64_t> strides_;
  std::vector<double> ratios_, scales_;
  double center_offset_;
  mutable std::mutex mutex_;
  mutable std::map<std::tuple<int64_t, int64_t, int64_t, int, int, int>, Tensor> cache_;
};

}  // namespace gndet
