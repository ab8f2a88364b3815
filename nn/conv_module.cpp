#include "nn/conv_module.h"

#include "nn/init.h"
#include "nn/norm_layers.h"
#include "ops/elementwise.h"

namespace gndet::nn {

ConvModule::ConvModule(const ConvModuleOptions& o, Generator& gen) : relu_(o.relu) {
  const bool with_norm = o.norm.type != NormType::None;
  Conv2dOptions conv = o.conv;
  if (o.auto_bias) conv.bias = !with_norm;
  conv_ = register_module("conv", std::make_shared<Conv2d>(conv, gen));
  init::kaiming_normal(conv_->weight(), gen, init::FanMode::FanOut, init::Nonlinearity::ReLU);
  if (conv_->bias().defined()) init::constant(conv_->bias(), 0.0);
  if (with_norm) norm_ = register_module(o.norm.abbr(), make_norm(o.norm, conv.out_channels));
}

Tensor ConvModule::forward(const Tensor& x) {
  ModuleScope scope(this);  // gndet graph: label the ops below with this module's name
  Tensor y = conv_->forward(x);
  if (norm_) return relu_ ? norm_relu(*norm_, y) : norm_->forward(y);
  return relu_ ? relu(y) : y;
}

}  // namespace gndet::nn
