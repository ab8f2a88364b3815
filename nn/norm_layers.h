// Normalisation layers. Both report is_norm() so that optimiser rules (norm_decay_mult) find them.
#pragma once

#include "nn/module.h"

namespace gndet::nn {

// Parameters weight (ones) and bias (zeros) of (num_channels) when affine; input (N, C, *).
class GroupNorm : public UnaryModule {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
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

}  // namespace gndet::nn
