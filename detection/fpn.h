// Feature Pyramid Network (mmdetection's FPN, add_extra_convs=False):
//   lateral_convs.i: 1x1 ConvModule C_i -> out (norm, no activation)
//   top-down:        L_i += nearest-upsample(L_{i+1}) to L_i's size
//   fpn_convs.i:     3x3 ConvModule out -> out (norm, no activation)
//   extra levels:    P_{k+1} = max_pool(P_k, kernel 1, stride 2) until num_outs maps exist.
// Convs start from xavier_uniform (mmdetection's FPN init), norms from 1 / 0.
#pragma once

#include <vector>

#include "detection/layer_config.h"
#include "nn/layers.h"

namespace gndet {

struct FPNOptions {
  std::vector<int64_t> in_channels;
  int64_t out_channels = 256;
  int64_t num_outs = 5;
  NormSpec norm;
  bool ws = false;

  // {"type": "FPN", "in_channels", "out_channels", "num_outs", "norm_cfg", "conv_cfg"}
  static FPNOptions from_config(const ConfigNode& cfg);
};

class FPN : public nn::Module {
 public:
  FPN(const FPNOptions& options, Generator& gen);
  // One map per in_channels entry (finest first) -> num_outs maps of out_channels.
  std::vector<Tensor> forward(const std::vector<Tensor>& inputs);
  const FPNOptions& options() const { return options_; }

 private:
  FPNOptions options_;
  std::shared_ptr<nn::Sequential> lateral_convs_, fpn_convs_;
};

}  // namespace gndet
