// Loss scaling for mixed-precision training: PyTorch's GradScaler, as mmengine's AmpOptimWrapper
// drives it (loss_scale = "dynamic", a number, or GradScaler's arguments).
//
// float16 cannot hold magnitudes below 2^-24 (~6e-8): many of a detector's gradients are smaller
// and would round to zero in the 16-bit products of backward (ops/autocast.h). Backward therefore
// starts from loss x S, and the gradients are divided by S again before clipping and the update.
// An S too large overflows instead (a product beyond 65504 becomes inf): the step is then skipped
// and a dynamic scaler multiplies S by backoff_factor; after growth_interval steps in a row without
// overflow it multiplies S by growth_factor to win range back. A static scaler keeps S but still
// skips a step whose gradients are not finite (as mmengine's number loss_scale does).
//
// Per iteration:   backward(loss * scale())  ->  found_inf = !unscale(params)  ->  clip and step
//                  unless found_inf  ->  update(found_inf)
// Under data parallelism unscale runs after the all-reduce, so every rank sees the same averaged
// gradients and takes the same decision.
#pragma once

#include <cstdint>

#include "tensor/tensor.h"

namespace gndet::nn {

struct LossScalerOptions {  // PyTorch's GradScaler defaults
  bool dynamic = true;
  double init_scale = 65536.0;  // 2^16
  double growth_factor = 2.0;
  double backoff_factor = 0.5;
  int64_t growth_interval = 2000;
};

class LossScaler {
 public:
  explicit LossScaler(const LossScalerOptions& options);

  double scale() const { return scale_; }
  // Consecutive steps without overflow since the last change of the scale (GradScaler's
  // growth tracker); saved in checkpoints with the scale.
  int64_t growth_tracker() const { return growth_tracker_; }
  const LossScalerOptions& options() const { return options_; }

  // Divides every defined gradient of `params` by scale() in place; true when all of them are
  // finite afterwards (false: skip this step).
  bool unscale(const Tensors& params) const;
  // After each iteration, with what unscale found: backs off, grows, or counts.
  void update(bool found_inf);
  // Restores a saved state (--resume); throws on a scale that is not positive and finite.
  void load_state(double scale, int64_t growth_tracker);

 private:
  LossScalerOptions options_;
  double scale_;
  int64_t growth_tracker_ = 0;
};

}  // namespace gndet::nn
