// Reading mmdetection's norm_cfg / conv_cfg dicts into layer options.
//
//   norm_cfg {"type": "GN", "num_groups": 32}  -> GroupNorm, child name "gn"
//   norm_cfg {"type": "FrozenBN"} or {"type": "BN"} -> FrozenBatchNorm2d, child name "bn"
//     ("BN" is accepted for mmdetection's BN bases, which train with norm_eval=True: statistics
//      frozen. gndet keeps the affine part frozen too; the zoo's models are all GN.)
//   conv_cfg {"type": "ConvWS"} -> weight standardization; absent, null or "Conv2d" -> plain
#pragma once

#include <memory>
#include <string>

#include "detection/config.h"
#include "nn/conv_module.h"

namespace gndet {

struct NormSpec {
  nn::NormType type = nn::NormType::None;
  int64_t num_groups = 32;
  double eps = 1e-5;
  // mmcv's build_norm_layer abbreviation, used in names like "gn1", "bn1".
  std::string abbr() const { return type == nn::NormType::GroupNorm ? "gn" : "bn"; }
};

// parent[key] when present and not null, else no norm.
NormSpec norm_from_config(const ConfigNode& parent, const std::string& key = "norm_cfg");
// parent["conv_cfg"]: true for ConvWS.
bool ws_from_config(const ConfigNode& parent);

// A standalone norm layer for `channels` (GroupNorm or FrozenBatchNorm2d).
std::shared_ptr<nn::UnaryModule> make_norm(const NormSpec& norm, int64_t channels);

// ConvModuleOptions with the norm and WS filled in.
nn::ConvModuleOptions conv_module_options(int64_t in, int64_t out, int64_t kernel, const NormSpec& norm, bool ws,
                                          bool relu, int64_t stride = 1);

}  // namespace gndet
