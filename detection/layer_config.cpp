#include "detection/layer_config.h"

namespace gndet {

NormSpec norm_from_config(const ConfigNode& parent, const std::string& key) {
  NormSpec n;
  if (!parent.has(key) || parent[key].is_null()) return n;
  const ConfigNode cfg = parent[key];
  const std::string type = cfg.type({"GN", "BN", "FrozenBN"});
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
  return parent["conv_cfg"].type({"ConvWS", "Conv2d", "Conv"}) == "ConvWS";
}

std::shared_ptr<nn::UnaryModule> make_norm(const NormSpec& norm, int64_t channels) {
  if (norm.type == nn::NormType::GroupNorm) return std::make_shared<nn::GroupNorm>(norm.num_groups, channels, norm.eps);
  GNDET_CHECK(norm.type == nn::NormType::FrozenBatchNorm, "make_norm: no norm type given");
  return std::make_shared<nn::FrozenBatchNorm2d>(channels, norm.eps);
}

nn::ConvModuleOptions conv_module_options(int64_t in, int64_t out, int64_t kernel, const NormSpec& norm, bool ws,
                                          bool relu, int64_t stride) {
  nn::ConvModuleOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel = {kernel, kernel};
  o.stride = {stride, stride};
  o.padding = {kernel / 2, kernel / 2};
  o.norm = norm.type;
  o.num_groups = norm.num_groups;
  o.norm_eps = norm.eps;
  o.relu = relu;
  o.weight_standardization = ws;
  return o;
}

}  // namespace gndet
