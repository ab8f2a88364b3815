// One SGD update of one parameter in a single pass over its values (nn::SGD::step's kernel).
//
// The update is PyTorch's SGD (dampening 0), each line rounded in the parameter's type exactly as
// the unfused ops would round it (mul by a scalar, then add):
//   d   = g + p * weight_decay                      (when weight_decay != 0)
//   buf = first ? d : buf * momentum + d            (when momentum != 0)
//   d   = nesterov ? d + buf * momentum : buf       (when momentum != 0)
//   p   = p + d * (-lr)
// Unfused, this is six passes over the parameter with three temporaries; fused, it reads g, p and
// buf once and writes p and buf once. The formula lives here once, for both devices.
#pragma once

#include "ops/elementwise_functors.h"
#include "tensor/tensor.h"
#include "tensor/dispatch.h"

namespace gndet {

struct SgdStep {
  double lr = 0.0;
  double momentum = 0.0;  // 0: no buffer is read or written
  double weight_decay = 0.0;
  bool nesterov = false;
  bool first = false;  // the buffer is written, not read: a parameter's first step

  // The update of one value, with the options that decide the formula's shape as template
  // arguments: a loop over it has no branches, so that the CPU compiler vectorises it.
  template <bool kDecay, bool kMomentum, bool kFirst, bool kNesterov, class T>
  GNDET_HD static void apply(T& p, T g, T& buf, T weight_decay, T momentum, T neg_lr) {
    T d = g;
    if constexpr (kDecay) d = static_cast<T>(d + static_cast<T>(p * weight_decay));
    if constexpr (kMomentum) {
      buf = kFirst ? d : static_cast<T>(static_cast<T>(buf * momentum) + d);
      d = kNesterov ? static_cast<T>(d + static_cast<T>(buf * momentum)) : buf;
    }
    p = static_cast<T>(p + static_cast<T>(d * neg_lr));
  }

  // Calls f.template operator()<kDecay, kMomentum, kFirst, kNesterov>() for this step's options.
  template <class F>
  void dispatch(F&& f) const {
    const bool decay = weight_decay != 0.0;
    if (momentum == 0.0) {
      decay ? f.template operator()<true, false, false, false>() : f.template operator()<false, false, false, false>();
      return;
    }
    auto with_decay = [&]<bool kFirst, bool kNesterov>() {
      decay ? f.template operator()<true, true, kFirst, kNesterov>() : f.template operator()<false, true, kFirst, kNesterov>();
    };
    if (first) {
      nesterov ? with_decay.template operator()<true, true>() : with_decay.template operator()<true, false>();
    } else {
      nesterov ? with_decay.template operator()<false, true>() : with_decay.template operator()<false, false>();
    }
  }
};

// param, grad and momentum_buffer contiguous, of one shape, dtype (float) and device;
// momentum_buffer undefined when step.momentum == 0.
GNDET_DECLARE_KERNEL(sgd_step_kernel, void(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer,
                                           const SgdStep& step));

// Updates param (and momentum_buffer) in place; not recorded by autograd. With momentum, an
// undefined momentum_buffer becomes a new one (step.first is then implied).
void sgd_step_(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, SgdStep step);

}  // namespace gndet
