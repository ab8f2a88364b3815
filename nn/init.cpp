#include "nn/init.h"

#include <cmath>

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"

namespace gndet::nn::init {

namespace {

void overwrite(const Tensor& w, const Tensor& values) {
  autograd::NoGradGuard no_grad;
  Tensor dst = w;
  dst.copy_(values);
}

void check_weight(const Tensor& w, const char* fn) {
  GNDET_CHECK(w.defined() && is_floating(w.dtype()), "init::", fn, ": expected a floating tensor");
}

double fan(const Tensor& w, FanMode mode, const char* fn) {
  check_weight(w, fn);
  const auto [fan_in, fan_out] = fans(w);
  const int64_t f = mode == FanMode::FanIn ? fan_in : fan_out;
  GNDET_CHECK(f > 0, "init::", fn, ": zero fan for a weight of shape ", shape_str(w.shape()));
  return static_cast<double>(f);
}

}  // namespace

double gain(Nonlinearity nonlinearity, double negative_slope) {
  switch (nonlinearity) {
    case Nonlinearity::Linear: return 1.0;
    case Nonlinearity::ReLU: return std::sqrt(2.0);
    case Nonlinearity::LeakyReLU: return std::sqrt(2.0 / (1.0 + negative_slope * negative_slope));
  }
  return 1.0;
}

std::pair<int64_t, int64_t> fans(const Tensor& w) {
  GNDET_CHECK(w.dim() >= 2, "init: fan in and fan out need a tensor with at least 2 dims, got ", shape_str(w.shape()));
  const int64_t receptive = w.numel() / std::max<int64_t>(w.size(0) * w.size(1), 1);
  return {w.size(1) * receptive, w.size(0) * receptive};
}

void kaiming_normal(const Tensor& w, Generator& gen, FanMode mode, Nonlinearity nonlinearity, double negative_slope) {
  const double std = gain(nonlinearity, negative_slope) / std::sqrt(fan(w, mode, "kaiming_normal"));
  normal(w, gen, 0.0, std);
}

void kaiming_uniform(const Tensor& w, Generator& gen, FanMode mode, Nonlinearity nonlinearity, double negative_slope) {
  const double bound = gain(nonlinearity, negative_slope) * std::sqrt(3.0 / fan(w, mode, "kaiming_uniform"));
  uniform(w, gen, -bound, bound);
}

void xavier_uniform(const Tensor& w, Generator& gen, double g) {
  check_weight(w, "xavier_uniform");
  const auto [fan_in, fan_out] = fans(w);
  GNDET_CHECK(fan_in + fan_out > 0, "init::xavier_uniform: zero fans for shape ", shape_str(w.shape()));
  const double bound = g * std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
  uniform(w, gen, -bound, bound);
}

void normal(const Tensor& w, Generator& gen, double mean, double std) {
  check_weight(w, "normal");
  overwrite(w, randn(w.shape(), gen, w.options()) * std + mean);
}

void uniform(const Tensor& w, Generator& gen, double low, double high) {
  check_weight(w, "uniform");
  GNDET_CHECK(low <= high, "init::uniform: low ", low, " > high ", high);
  overwrite(w, rand(w.shape(), gen, w.options()) * (high - low) + low);
}

void constant(const Tensor& w, double value) {
  GNDET_CHECK(w.defined(), "init::constant: undefined tensor");
  autograd::NoGradGuard no_grad;
  Tensor dst = w;
  dst.fill_(value);
}

}  // namespace gndet::nn::init
