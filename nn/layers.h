// The basic layers, each a UnaryModule with PyTorch's parameter names ("weight", "bias") and
// PyTorch's default initialisation (kaiming_uniform with a = sqrt(5), bias U(+-1/sqrt(fan_in))),
// drawn from the Generator given to the constructor. Options use designated initialisers:
//   nn::Conv2d conv({.in_channels = 3, .out_channels = 64, .kernel = {7, 7}, .stride = {2, 2},
//                    .padding = {3, 3}, .bias = false}, gen);
#pragma once

#include <memory>
#include <vector>

#include "nn/module.h"
#include "ops/conv.h"
#include "tensor/random.h"

namespace gndet::nn {

struct Conv2dOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  Pair kernel{1, 1};
  Pair stride{1, 1};
  Pair padding{0, 0};
  Pair dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
  // mmcv's ConvWS2d: forward uses weight_standardization(weight); the parameter stays "weight".
  bool weight_standardization = false;
  double ws_eps = 1e-5;
};

// weight (out, in/groups, kh, kw), bias (out).
class Conv2d : public UnaryModule {
 public:
  explicit Conv2d(const Conv2dOptions& options, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  const Conv2dOptions& options() const { return options_; }
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }  // undefined without bias

 private:
  Conv2dOptions options_;
  Tensor weight_, bias_;
};

struct ConvTranspose2dOptions {
  int64_t in_channels = 0;
  int64_t out_channels = 0;
  Pair kernel{1, 1};
  Pair stride{1, 1};
  Pair padding{0, 0};
  Pair output_padding{0, 0};
  Pair dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
};

// weight (in, out/groups, kh, kw) (PyTorch layout), bias (out).
class ConvTranspose2d : public UnaryModule {
 public:
  explicit ConvTranspose2d(const ConvTranspose2dOptions& options, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  const ConvTranspose2dOptions& options() const { return options_; }
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }

 private:
  ConvTranspose2dOptions options_;
  Tensor weight_, bias_;
};

// weight (out, in), bias (out); input (..., in).
class Linear : public UnaryModule {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true, Generator& gen = default_generator());
  Tensor forward(const Tensor& x) override;
  Tensor weight() const { return weight_; }
  Tensor bias() const { return bias_; }

 private:
  Tensor weight_, bias_;
};

class MaxPool2d : public UnaryModule {
 public:
  MaxPool2d(Pair kernel, Pair stride, Pair padding = {0, 0}, bool ceil_mode = false)
      : kernel_(kernel), stride_(stride), padding_(padding), ceil_mode_(ceil_mode) {}
  Tensor forward(const Tensor& x) override;

 private:
  Pair kernel_, stride_, padding_;
  bool ceil_mode_;
};

class ReLU : public UnaryModule {
 public:
  Tensor forward(const Tensor& x) override;
};

// Children named "0", "1", ... applied in order.
class Sequential : public UnaryModule {
 public:
  Sequential() = default;
  explicit Sequential(const std::vector<std::shared_ptr<UnaryModule>>& layers);
  Sequential& push_back(std::shared_ptr<UnaryModule> layer);
  Tensor forward(const Tensor& x) override;
  size_t size() const { return layers_.size(); }
  const std::shared_ptr<UnaryModule>& operator[](size_t i) const { return layers_.at(i); }

 private:
  std::vector<std::shared_ptr<UnaryModule>> layers_;
};

}  // namespace gndet::nn
