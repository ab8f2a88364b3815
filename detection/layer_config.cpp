#include "detection/layer_config.h"

namespace gndet {

NormSpec norm_from_config(const ConfigNode& parent, const std::string& key) {
  NormSpec n;
  if (!parent.has(key) || parent[key].is_null()) return n;
  const ConfigNode cfg = parent[key];
  const std::string type = cfg.type({"GN", "BN", "FrozenBN"});
  // requires_grad: whether the norm's affine parameters train; frozen_stages and the norm type decide
  // that in gndet (mmdetection's GN configs all say true).
  cfg.check_keys({"type", "num_groups", "eps", "requires_grad"});
  if (type == "GN") {
    n.type = nn::NormType::GroupNorm;
    n.num_groups = cfg["num_groups"].as_int();
  } else {
    n.type = nn::NormType::FrozenBatchNorm;
  }
  n.eps = cfg.get_double("eps", 1e-5);
  return n;
}

bool ws_from_config(const ConfigNode& parent) {
  if (!parent.has("conv_cfg") || parent["conv_cfg"].is_null()) return false;
  parent["conv_cfg"].check_keys({"type"});
  return parent["conv_cfg"].type({"ConvWS", "Conv2d", "Conv"}) == "ConvWS";
}

void check_loss(const ConfigNode& cfg, const std::string& type) {
  cfg.type({type});
  cfg.check_keys({"type", "use_sigmoid", "use_mask", "loss_weight"});
  GNDET_CHECK(cfg.get_double("loss_weight", 1.0) == 1.0, "config ", cfg.path(),
              ".loss_weight: only 1.0 is supported (the zoo's value)");
}

nn::ConvModuleOptions conv_module_options(int64_t in, int64_t out, int64_t kernel, const NormSpec& norm, bool ws,
                                          bool relu, int64_t stride) {
  nn::ConvModuleOptions o;
  o.conv.in_channels = in;
  o.conv.out_channels = out;
  o.conv.kernel = {kernel, kernel};
  o.conv.stride = {stride, stride};
  o.conv.padding = {kernel / 2, kernel / 2};
  o.conv.weight_standardization = ws;
  o.norm = norm;
  o.relu = relu;
  return o;
}

}  // namespace gndet
