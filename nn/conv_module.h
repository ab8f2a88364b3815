// mmcv's ConvModule: conv -> norm -> activation, with mmcv's child names and initialisation.
//
//   children: "conv" (Conv2d, WS when asked), then "gn" (GroupNorm) or "bn" (FrozenBatchNorm2d)
//   bias: mmcv's "auto" by default (auto_bias): the conv has a bias only when no norm follows
//   init: conv weight kaiming_normal(fan_out, relu), conv bias 0; norm weight 1, bias 0
// so that "neck.lateral_convs.0.conv.weight" / "...gn.weight" load from mmdetection checkpoints.
#pragma once

#include <memory>

#include "nn/layers.h"
#include "nn/norm_layers.h"

namespace gndet::nn {

struct ConvModuleOptions {
  Conv2dOptions conv;  // conv.weight_standardization: mmcv's ConvWS2d
  NormSpec norm;       // NormType::None: no norm
  bool relu = true;
  // mmcv's bias='auto': the conv gets a bias only when no norm follows, whatever conv.bias says.
  // false: conv.bias as given.
  bool auto_bias = true;
};

class ConvModule : public UnaryModule {
 public:
  explicit ConvModule(const ConvModuleOptions& options, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  const std::shared_ptr<Conv2d>& conv() const { return conv_; }
  const std::shared_ptr<UnaryModule>& norm() const { return norm_; }  // null without a norm

 private:
  bool relu_;
  std::shared_ptr<Conv2d> conv_;
  std::shared_ptr<UnaryModule> norm_;
};

}  // namespace gndet::nn
