// Parameter initialisers. Each overwrites its tensor in place (through the handle, under
// NoGradGuard) with values drawn from the given seeded Generator, so a seed fixes a model's
// initial weights on every device (see tensor/random.h).
//
// Fans follow PyTorch's _calculate_fan_in_and_fan_out: for w (d0, d1, k...), receptive = prod(k),
// fan_in = d1 * receptive, fan_out = d0 * receptive (also for ConvTranspose weights, as PyTorch
// and mmcv do).
#pragma once

#include <utility>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace gndet::nn::init {

enum class FanMode { FanIn, FanOut };
enum class Nonlinearity { Linear, ReLU, LeakyReLU };  // Linear: identity, conv, sigmoid (gain 1)

// PyTorch's calculate_gain: 1, sqrt(2), sqrt(2 / (1 + a^2)).
double gain(Nonlinearity nonlinearity, double negative_slope = 0.0);
// (fan_in, fan_out) of a weight with at least 2 dims.
std::pair<int64_t, int64_t> fans(const Tensor& w);

// N(0, std), std = gain / sqrt(fan). mmcv's kaiming_init is (FanOut, ReLU).
void kaiming_normal(const Tensor& w, Generator& gen, FanMode mode = FanMode::FanIn,
                    Nonlinearity nonlinearity = Nonlinearity::ReLU, double negative_slope = 0.0);
// U(-b, b), b = gain * sqrt(3 / fan). PyTorch's default Conv2d / Linear weight init is
// (FanIn, LeakyReLU, negative_slope = sqrt(5)), i.e. b = 1 / sqrt(fan_in).
void kaiming_uniform(const Tensor& w, Generator& gen, FanMode mode = FanMode::FanIn,
                     Nonlinearity nonlinearity = Nonlinearity::ReLU, double negative_slope = 0.0);
// U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)).
void xavier_uniform(const Tensor& w, Generator& gen, double gain = 1.0);
void normal(const Tensor& w, Generator& gen, double mean = 0.0, double std = 1.0);
void uniform(const Tensor& w, Generator& gen, double low, double high);
void constant(const Tensor& w, double value);

}  // namespace gndet::nn::init
