// mmcv's ConvModule: conv -> norm -> activation, with mmcv's child names and initialisation.
//
//   children: "conv" (Conv2d, WS when asked), then "gn" (GroupNorm) or "bn" (FrozenBatchNorm2d)
//   bias: "auto" by default: the conv has a bias only when no norm follows
//   init: conv weight kaiming_normal(fan_out, relu), conv bias 0; norm weight 1, bias 0
// so that "neck.lateral_convs.0.conv.weight" / "...gn.weight" load from mmdetection checkpoints.
#pragma once

#include <memory>
#include <optional>

#include "nn/layers.h"
#include "nn/norm_layers.h"

namespace gndet::nn {

enum class NormType { None, GroupNorm, FrozenBatchNorm };

struct ConvModuleOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  Pair kernel{1, 1};
  Pair stride{1, 1};
  Pair padding{0, 0};
  Pair dilation{1, 1};
  int64_t groups = 1;
  NormType norm = NormType::None;
  int64_t num_groups = 32;  // GroupNorm
  double norm_eps = 1e-5;
  bool relu = true;
  bool weight_standardization = false;  // ConvWS2d
  std::optional<bool> bias{};           // unset: mmcv's bias='auto'
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
