// Helpers for the gradcheck cases in ops/checks/: seeded float64 inputs that require grad, made
// on autograd::gradcheck_device() (the CPU unless `gndet gradcheck --device` says otherwise).
#pragma once

#include "autograd/gradcheck.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"
#include "tensor/random.h"

namespace gndet::checks {

using autograd::gradcheck;
using autograd::GradcheckResult;

// `t` on the device the checks run on: for the constants a case builds itself.
inline Tensor on_check_device(const Tensor& t) {
  const Device d = autograd::gradcheck_device();
  return t.device() == d ? t : t.to(d);
}

// A seeded float64 input that requires grad, drawn on the CPU (the same values on every device).
inline Tensor leaf_on_check_device(const Tensor& t) {
  return on_check_device(t.detach()).detach().set_requires_grad(true);
}

// Uniform in [lo, hi), float64, requires grad.
inline Tensor uniform(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  Generator g(seed);
  Tensor t = rand(shape, g, kFloat64) * (hi - lo) + lo;
  return leaf_on_check_device(t);
}

// Magnitudes in [0.2, 1] with random signs: keeps every element away from kinks at 0.
inline Tensor away_from_zero(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  const Tensor mag = rand(shape, g, kFloat64) * 0.8 + 0.2;
  const Tensor sgn = where(lt(rand(shape, g, kFloat64), 0.5), full({}, -1.0, kFloat64), 1.0);
  return leaf_on_check_device(mag * sgn);
}

// A permutation of distinct values (no ties for max/sort), float64, requires grad.
inline Tensor distinct(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  const int64_t n = shape_numel(shape);
  const Tensor perm = randperm(n, g).to(kFloat64) * (1.0 / static_cast<double>(n));
  return leaf_on_check_device(perm.reshape(shape));
}

}  // namespace gndet::checks
