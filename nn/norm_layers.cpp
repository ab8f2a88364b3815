#include "nn/norm_layers.h"

#include "ops/elementwise.h"
#include "ops/norm.h"
#include "tensor/factory.h"

namespace gndet::nn {

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, double eps, bool affine)
    : num_groups_(num_groups), eps_(eps) {
  GNDET_CHECK(num_groups > 0 && num_channels > 0 && num_channels % num_groups == 0, "GroupNorm: num_channels ",
              num_channels, " must be a positive multiple of num_groups ", num_groups);
  if (affine) {
    weight_ = register_parameter("weight", ones({num_channels}));
    bias_ = register_parameter("bias", zeros({num_channels}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  ModuleScope scope(this);  // gndet graph: label the ops below with this module's name
  return group_norm(x, num_groups_, weight_, bias_, eps_);
}

Tensor GroupNorm::forward_relu(const Tensor& x) {
  ModuleScope scope(this);
  return group_norm_relu(x, num_groups_, weight_, bias_, eps_);
}

Tensor norm_relu(UnaryModule& norm, const Tensor& x) {
  if (auto* gn = dynamic_cast<GroupNorm*>(&norm)) return gn->forward_relu(x);
  return relu(norm.forward(x));
}

FrozenBatchNorm2d::FrozenBatchNorm2d(int64_t num_features, double eps) : eps_(eps) {
  GNDET_CHECK(num_features > 0, "FrozenBatchNorm2d: num_features must be positive, got ", num_features);
  weight_ = register_buffer("weight", ones({num_features}));
  bias_ = register_buffer("bias", zeros({num_features}));
  running_mean_ = register_buffer("running_mean", zeros({num_features}));
  running_var_ = register_buffer("running_var", ones({num_features}));
}

Tensor FrozenBatchNorm2d::forward(const Tensor& x) {
  ModuleScope scope(this);
  return frozen_batch_norm(x, weight_, bias_, running_mean_, running_var_, eps_);
}

std::shared_ptr<UnaryModule> make_norm(const NormSpec& norm, int64_t channels) {
  if (norm.type == NormType::GroupNorm) return std::make_shared<GroupNorm>(norm.num_groups, channels, norm.eps);
  GNDET_CHECK(norm.type == NormType::FrozenBatchNorm, "make_norm: no norm type given");
  return std::make_shared<FrozenBatchNorm2d>(channels, norm.eps);
}

}  // namespace gndet::nn
