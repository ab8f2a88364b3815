// Normalisation layers. Both report is_norm() so that optimiser rules (norm_decay_mult) find them.
#pragma once

#include <memory>
#include <string>

#include "nn/module.h"

namespace gndet::nn {

// Parameters weight (ones) and bias (zeros) of (num_channels) when affine; input (N, C, *).
class GroupNorm : public UnaryModule {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  // relu(forward(x)), the ReLU applied as the output is written (ops/norm.h: group_norm_relu).
  Tensor forward_relu(const Tensor& x);
  bool is_norm() const override { return true; }
  int64_t num_groups() const { return num_groups_; }
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }

 private:
  int64_t num_groups_;
  double eps_;
  Tensor weight_, bias_;
};

// BatchNorm with fixed statistics (Detectron / torchvision pre-trained backbones). Buffers weight
// (ones), bias (zeros), running_mean (zeros), running_var (ones), all (num_features); no parameters.
class FrozenBatchNorm2d : public UnaryModule {
 public:
  explicit FrozenBatchNorm2d(int64_t num_features, double eps = 1e-5);
  Tensor forward(const Tensor& x) override;
  bool is_norm() const override { return true; }

 private:
  double eps_;
  Tensor weight_, bias_, running_mean_, running_var_;
};

enum class NormType { None, GroupNorm, FrozenBatchNorm };

// Which norm a layer gets (mmcv's norm_cfg, read by detection/layer_config.h).
struct NormSpec {
  NormType type = NormType::None;
  int64_t num_groups = 32;  // GroupNorm
  double eps = 1e-5;
  // mmcv's build_norm_layer abbreviation, used in child names like "gn1", "bn1".
  std::string abbr() const { return type == NormType::GroupNorm ? "gn" : "bn"; }
};

// relu(norm(x)): fused where `norm` is a GroupNorm, else the two steps.
Tensor norm_relu(UnaryModule& norm, const Tensor& x);

// A norm layer for `channels` (GroupNorm or FrozenBatchNorm2d); NormType::None is an error.
std::shared_ptr<UnaryModule> make_norm(const NormSpec& norm, int64_t channels);

}  // namespace gndet::nn
