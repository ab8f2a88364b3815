// SingleRoIExtractor (mmdetection): RoIAlign from the FPN level that matches each RoI's size.
//
// A RoI of scale s = sqrt(w * h) goes to level floor(log2(s / finest_scale + 1e-6)), clamped to
// the available levels: with finest_scale 56 a 112-pixel box reads P3 (level 1), a 224-pixel box
// P4. (The 1e-6 keeps exact powers of two from falling one level down through rounding.)
#pragma once

#include <vector>

#include "tensor/config.h"
#include "ops/roi_align.h"
#include "tensor/tensor.h"

namespace gndet {

// Boxes of a batch as RoIs: (sum P_i, 5) rows (image index, x1, y1, x2, y2).
Tensor boxes_to_rois(const std::vector<Tensor>& boxes_per_image);

class RoIExtractor {
 public:
  RoIAlignParams roi;                  // out size, sampling ratio, aligned; spatial_scale set per level
  std::vector<int64_t> featmap_strides;
  int64_t finest_scale = 56;

  // {"type": "SingleRoIExtractor", "roi_layer": {"type": "RoIAlign", "output_size", "sampling_ratio",
  //  "aligned"}, "out_channels", "featmap_strides", "finest_scale"}
  static RoIExtractor from_config(const ConfigNode& cfg);

  // rois: (K, 5) -> (K) int64 level index.
  Tensor map_levels(const Tensor& rois) const;
  // feats: one (N, C, H_l, W_l) map per stride (extra maps are ignored); rois: (K, 5).
  // Returns (K, C, out, out), differentiable in the features.
  Tensor operator()(const std::vector<Tensor>& feats, const Tensor& rois) const;
};

}  // namespace gndet
