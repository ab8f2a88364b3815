#include "nn/layers.h"

#include <cmath>
#include <string>

#include "nn/init.h"
#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "tensor/factory.h"

namespace gndet::nn {

namespace {

// PyTorch's reset_parameters for Conv*d and Linear.
void default_init(const Tensor& weight, const Tensor& bias, Generator& gen) {
  init::kaiming_uniform(weight, gen, init::FanMode::FanIn, init::Nonlinearity::LeakyReLU, std::sqrt(5.0));
  if (bias.defined()) {
    const int64_t fan_in = init::fans(weight).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
    init::uniform(bias, gen, -bound, bound);
  }
}

void check_channels(const char* layer, int64_t in, int64_t out, int64_t groups) {
  GNDET_CHECK(in > 0 && out > 0 && groups > 0 && in % groups == 0 && out % groups == 0, layer, ": in_channels ", in,
              " and out_channels ", out, " must be positive multiples of groups ", groups);
}

}  // namespace

Conv2d::Conv2d(const Conv2dOptions& o, Generator& gen) : options_(o) {
  check_channels("Conv2d", o.in_channels, o.out_channels, o.groups);
  weight_ = register_parameter("weight", empty({o.out_channels, o.in_channels / o.groups, o.kernel[0], o.kernel[1]}));
  if (o.bias) bias_ = register_parameter("bias", empty({o.out_channels}));
  default_init(weight_, bias_, gen);
}

Tensor Conv2d::forward(const Tensor& x) {
  ModuleScope scope(this);  // gndet graph: label the ops below with this module's name
  const Tensor w = options_.weight_standardization ? weight_standardization(weight_, options_.ws_eps) : weight_;
  return conv2d(x, w, bias_, options_.stride, options_.padding, options_.dilation, options_.groups);
}

ConvTranspose2d::ConvTranspose2d(const ConvTranspose2dOptions& o, Generator& gen) : options_(o) {
  check_channels("ConvTranspose2d", o.in_channels, o.out_channels, o.groups);
  weight_ = register_parameter("weight", empty({o.in_channels, o.out_channels / o.groups, o.kernel[0], o.kernel[1]}));
  if (o.bias) bias_ = register_parameter("bias", empty({o.out_channels}));
  default_init(weight_, bias_, gen);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  ModuleScope scope(this);
  return conv_transpose2d(x, weight_, bias_, options_.stride, options_.padding, options_.output_padding,
                          options_.dilation, options_.groups);
}

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, Generator& gen) {
  GNDET_CHECK(in_features > 0 && out_features > 0, "Linear: in_features ", in_features, " and out_features ",
              out_features, " must be positive");
  weight_ = register_parameter("weight", empty({out_features, in_features}));
  if (bias) bias_ = register_parameter("bias", empty({out_features}));
  default_init(weight_, bias_, gen);
}

Tensor Linear::forward(const Tensor& x) {
  ModuleScope scope(this);
  return linear(x, weight_, bias_);
}

Tensor MaxPool2d::forward(const Tensor& x) { return max_pool2d(x, kernel_, stride_, padding_, ceil_mode_); }

Tensor ReLU::forward(const Tensor& x) { return relu(x); }

Sequential::Sequential(const std::vector<std::shared_ptr<UnaryModule>>& layers) {
  for (const auto& l : layers) push_back(l);
}

Sequential& Sequential::push_back(std::shared_ptr<UnaryModule> layer) {
  layers_.push_back(register_module(std::to_string(layers_.size()), std::move(layer)));
  return *this;
}

Tensor Sequential::forward(const Tensor& x) {
  ModuleScope scope(this);
  Tensor y = x;
  for (const auto& l : layers_) y = l->forward(y);
  return y;
}

}  // namespace gndet::nn
