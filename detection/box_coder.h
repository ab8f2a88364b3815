// DeltaXYWHBBoxCoder (mmdetection): boxes <-> regression targets.
//
// encode: for a proposal p and its target box g (centres px, gx; sizes pw = x2 - x1, ...):
//   d = ((gx - px) / pw, (gy - py) / ph, log(gw / pw), log(gh / ph)); returned as (d - mean) / std.
// decode inverts it, with dw, dh clamped to +-log(1000 / 16) (so a box never grows more than 62.5x
// in one step: exp(log(1000/16)) is mmdetection's wh_ratio_clip) and, when an image size is given,
// the result clipped to [0, W] x [0, H].
#pragma once

#include <array>
#include <cmath>

#include "tensor/config.h"
#include "tensor/tensor.h"

namespace gndet {

struct DeltaXYWHCoder {
  std::array<double, 4> means{0, 0, 0, 0};
  std::array<double, 4> stds{1, 1, 1, 1};
  double max_ratio = std::log(1000.0 / 16.0);

  // {"type": "DeltaXYWHBBoxCoder", "target_means": [...], "target_stds": [...]}
  static DeltaXYWHCoder from_config(const ConfigNode& cfg);

  // proposals, targets: (K, 4) -> (K, 4). Not differentiable (targets are constants).
  Tensor encode(const Tensor& proposals, const Tensor& targets) const;
  // rois: (K, 4); deltas: (K, 4 * C) -> boxes (K, 4 * C). image_hw = {H, W} clips; {0, 0} does not.
  Tensor decode(const Tensor& rois, const Tensor& deltas, std::array<int64_t, 2> image_hw = {0, 0}) const;
};

}  // namespace gndet
