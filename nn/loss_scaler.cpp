#include "nn/loss_scaler.h"

#include <cmath>

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tensor/grad_mode.h"

namespace gndet::nn {

LossScaler::LossScaler(const LossScalerOptions& options) : options_(options), scale_(options.init_scale) {
  const LossScalerOptions& o = options_;
  // The scale multiplies a float32 loss (GradScaler keeps it in float32): it must be a finite float32.
  GNDET_CHECK(std::isfinite(static_cast<float>(o.init_scale)) && o.init_scale > 0,
              "loss scaler: init_scale must be positive and finite in float32 (<= 3.4e38), got ", o.init_scale);
  GNDET_CHECK(std::isfinite(o.growth_factor) && o.growth_factor >= 1.0, "loss scaler: growth_factor must be >= 1, got ",
              o.growth_factor);
  GNDET_CHECK(o.backoff_factor > 0 && o.backoff_factor < 1.0, "loss scaler: backoff_factor must lie in (0, 1), got ",
              o.backoff_factor);
  GNDET_CHECK(o.growth_interval > 0, "loss scaler: growth_interval must be positive, got ", o.growth_interval);
}

bool LossScaler::unscale(const Tensors& params) const {
  autograd::NoGradGuard no_grad;
  // As GradScaler: the reciprocal in double, rounded once to float32, then one multiply per value.
  const double inv = static_cast<double>(static_cast<float>(1.0 / scale_));
  bool finite = true;
  for (const Tensor& p : params) {
    Tensor g = p.grad();
    if (!g.defined() || g.numel() == 0) continue;
    mul_(g, inv);
    // 0 x inf and 0 x NaN are NaN, 0 x finite is 0: the sum is NaN exactly when a value is not
    // finite, and cannot overflow.
    if (finite && !std::isfinite(sum(g * 0.0).item<double>())) finite = false;
  }
  return finite;
}

void LossScaler::update(bool found_inf) {
  if (!options_.dynamic) return;
  if (found_inf) {
    scale_ *= options_.backoff_factor;
    growth_tracker_ = 0;
    return;
  }
  if (++growth_tracker_ < options_.growth_interval) return;
  growth_tracker_ = 0;
  // GradScaler grows only to a finite scale (in float32, which holds its scale).
  const double grown = scale_ * options_.growth_factor;
  if (std::isfinite(static_cast<float>(grown))) scale_ = grown;
}

void LossScaler::load_state(double scale, int64_t growth_tracker) {
  GNDET_CHECK(std::isfinite(static_cast<float>(scale)) && scale > 0,
              "loss scaler: a saved scale must be positive and finite in float32, got ", scale);
  GNDET_CHECK(growth_tracker >= 0, "loss scaler: a saved growth tracker must be >= 0, got ", growth_tracker);
  scale_ = scale;
  growth_tracker_ = growth_tracker;
}

}  // namespace gndet::nn
