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

#include "tensor/config.h"
#include "nn/conv_module.h"

namespace gndet {

using nn::make_norm;
using nn::NormSpec;

// parent[key] when present and not null, else no norm.
NormSpec norm_from_config(const ConfigNode& parent, const std::string& key = "norm_cfg");
// parent["conv_cfg"]: true for ConvWS.
bool ws_from_config(const ConfigNode& parent);
// A loss dict {"type", "use_sigmoid", "use_mask", "loss_weight"} of the given type, loss_weight 1.
void check_loss(const ConfigNode& cfg, const std::string& type);

// ConvModuleOptions with the norm and WS filled in.
nn::ConvModuleOptions conv_module_options(int64_t in, int64_t out, int64_t kernel, const NormSpec& norm, bool ws,
                                          bool relu, int64_t stride = 1);

}  // namespace gndet
