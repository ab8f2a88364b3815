#include "detection/roi_extractor.h"

#include <numeric>

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/sort.h"
#include "tensor/factory.h"

namespace gndet {

Tensor boxes_to_rois(const std::vector<Tensor>& boxes_per_image) {
  GNDET_CHECK(!boxes_per_image.empty(), "boxes_to_rois: no images");
  Tensors rows;
  for (size_t i = 0; i < boxes_per_image.size(); ++i) {
    const Tensor& b = boxes_per_image[i];
    GNDET_CHECK(b.dim() == 2 && b.size(1) == 4, "boxes_to_rois: image ", i, " has boxes of shape ", shape_str(b.shape()));
    rows.push_back(cat({full({b.size(0), 1}, static_cast<double>(i), b.options()), b.detach()}, 1));
  }
  return cat(rows, 0);
}

RoIExtractor RoIExtractor::from_config(const ConfigNode& cfg) {
  cfg.type({"SingleRoIExtractor"});
  // out_channels: the features' channels, which the RoI head takes from the FPN.
  cfg.check_keys({"type", "roi_layer", "out_channels", "featmap_strides", "finest_scale"});
  RoIExtractor e;
  const ConfigNode layer = cfg["roi_layer"];
  layer.type({"RoIAlign"});
  layer.check_keys({"type", "output_size", "sampling_ratio", "aligned"});
  const int64_t size = layer["output_size"].as_int();
  e.roi.out_h = e.roi.out_w = size;
  e.roi.sampling_ratio = layer.get_int("sampling_ratio", 0);
  e.roi.aligned = layer.get_bool("aligned", true);  // mmcv's RoIAlign default
  e.featmap_strides = cfg["featmap_strides"].as_int_list();
  e.finest_scale = cfg.get_int("finest_scale", 56);
  GNDET_CHECK(!e.featmap_strides.empty(), "config ", cfg.path(), ".featmap_strides is empty");
  return e;
}

Tensor RoIExtractor::map_levels(const Tensor& rois) const {
  autograd::NoGradGuard no_grad;
  const Tensor r = rois.detach().to(kFloat64);
  const Tensor scale = sqrt((r.select(1, 3) - r.select(1, 1)) * (r.select(1, 4) - r.select(1, 2)));
  const double top = static_cast<double>(featmap_strides.size()) - 1;
  // log2(x) = log(x) / log(2), then floor and clamp.
  return clamp(floor(log(scale / static_cast<double>(finest_scale) + 1e-6) / std::log(2.0)), 0.0, top).to(kInt64);
}

Tensor RoIExtractor::operator()(const std::vector<Tensor>& feats, const Tensor& rois) const {
  GNDET_CHECK(feats.size() >= featmap_strides.size(), "RoIExtractor: ", feats.size(), " feature maps for ",
              featmap_strides.size(), " strides");
  const int64_t K = rois.size(0);
  const int64_t C = feats[0].size(1);
  if (K == 0) return zeros({0, C, roi.out_h, roi.out_w}, feats[0].options());
  const Tensor levels = map_levels(rois);
  Tensors pieces;
  Tensors order;
  for (size_t l = 0; l < featmap_strides.size(); ++l) {
    const Tensor idx = nonzero_1d(eq(levels, static_cast<double>(l)));
    if (idx.numel() == 0) continue;
    RoIAlignParams p = roi;
    p.spatial_scale = 1.0 / static_cast<double>(featmap_strides[l]);
    pieces.push_back(roi_align(feats[l], index_select(rois, 0, idx), p));
    order.push_back(idx);
  }
  // Rows came out grouped by level; put them back in RoI order.
  const Tensor grouped = cat(pieces, 0);
  const Tensor inverse = argsort(cat(order, 0), 0);
  return index_select(grouped, 0, inverse);
}

}  // namespace gndet
