// ResNet and ResNeXt backbones as mmdetection builds them (mmdet/models/backbones/resnet.py,
// resnext.py), with its parameter names:
//   conv1, gn1 (stem 7x7/2 + norm + ReLU, then max-pool 3x3/2)
//   layer{1..4}.{i}.conv{1,2,3}, .gn{1,2,3}, layer{k}.0.downsample.{0 (1x1 conv), 1 (norm)}
// style "pytorch" puts a block's stride on its 3x3 conv, "caffe" on the first 1x1. ResNeXt blocks
// (groups G, base_width w) have 3x3 convs of floor(planes * w / 64) * G channels in G groups.
// frozen_stages k freezes the stem and layer1..k (k = -1: nothing). Without pretrained weights,
// convs start from kaiming_normal(fan_out) and each block's last norm from 0 (zero_init_residual),
// so that every residual branch starts as the identity.
#pragma once

#include <vector>

#include "detection/layer_config.h"
#include "nn/layers.h"

namespace gndet {

struct ResNetOptions {
  int64_t depth = 50;  // 18, 34, 50, 101, 152
  int64_t in_channels = 3;
  int64_t stem_channels = 64;
  int64_t base_channels = 64;
  std::vector<int64_t> out_indices{0, 1, 2, 3};
  bool caffe_style = false;
  int64_t frozen_stages = 1;
  NormSpec norm;
  bool ws = false;
  int64_t groups = 1;       // ResNeXt cardinality
  int64_t base_width = 4;   // ResNeXt width per group
  bool zero_init_residual = true;

  // {"type": "ResNet" | "ResNeXt", "depth", "out_indices", "frozen_stages", "style", "norm_cfg",
  //  "conv_cfg", "groups", "base_width", "base_channels", "stem_channels", "zero_init_residual"}
  static ResNetOptions from_config(const ConfigNode& cfg);
};

class ResNet : public nn::Module {
 public:
  ResNet(const ResNetOptions& options, Generator& gen);
  // x: (N, 3, H, W) -> the outputs of the stages in out_indices (strides 4, 8, 16, 32).
  std::vector<Tensor> forward(const Tensor& x);
  // The stem alone: conv1 7x7/2, norm, ReLU, max-pool 3x3/2 (stride 4 in all).
  Tensor stem(const Tensor& x);
  // Channels of each returned feature map.
  std::vector<int64_t> out_channels() const;
  const ResNetOptions& options() const { return options_; }

 private:
  ResNetOptions options_;
  std::shared_ptr<nn::Conv2d> conv1_;
  std::shared_ptr<nn::UnaryModule> norm1_;
  std::vector<std::shared_ptr<nn::Sequential>> layers_;
  std::vector<int64_t> stage_channels_;
};

}  // namespace gndet
