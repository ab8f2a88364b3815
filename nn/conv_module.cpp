#include "nn/conv_module.h"

#include "nn/init.h"
#include "ops/elementwise.h"

namespace gndet::nn {

ConvModule::ConvModule(const ConvModuleOptions& o, Generator& gen) : relu_(o.relu) {
  const bool with_norm = o.norm != NormType::None;
  conv_ = register_module("conv", std::make_shared<Conv2d>(
                                      Conv2dOptions{.in_channels = o.in_channels,
                                                    .out_channels = o.out_channels,
                                                    .kernel = o.kernel,
                                                    .stride = o.stride,
                                                    .padding = o.padding,
                                                    .dilation = o.dilation,
                                                    .groups = o.groups,
                                                    .bias = o.bias.value_or(!with_norm),
                                                    .weight_standardization = o.weight_standardization},
                                      gen));
  init::kaiming_normal(conv_->weight(), gen, init::FanMode::FanOut, init::Nonlinearity::ReLU);
  if (conv_->bias().defined()) init::constant(conv_->bias(), 0.0);
  if (o.norm == NormType::GroupNorm) {
    norm_ = register_module("gn", std::make_shared<GroupNorm>(o.num_groups, o.out_channels, o.norm_eps));
  } else if (o.norm == NormType::FrozenBatchNorm) {
    norm_ = register_module("bn", std::make_shared<FrozenBatchNorm2d>(o.out_channels, o.norm_eps));
  }
}

Tensor ConvModule::forward(const Tensor& x) {
  ModuleScope scope(this);  // gndet graph: label the ops below with this module's name
  Tensor y = conv_->forward(x);
  if (norm_) y = norm_->forward(y);
  return relu_ ? relu(y) : y;
}

}  // namespace gndet::nn
