#include "ops/optim_step.h"

#include "tensor/factory.h"
#include "tensor/strided.h"

namespace gndet {

GNDET_DEFINE_KERNEL(sgd_step_kernel, void(const Tensor&, const Tensor&, const Tensor&, const SgdStep&));

void sgd_step_(Tensor& param, const Tensor& grad, Tensor& momentum_buffer, SgdStep step) {
  GNDET_CHECK(param.defined() && grad.defined(), "sgd_step_: param and grad must be defined");
  GNDET_CHECK(is_floating(param.dtype()), "sgd_step_: expected a float32 or float64 parameter, got ",
              dtype_name(param.dtype()));
  GNDET_CHECK(grad.shape() == param.shape() && grad.dtype() == param.dtype() && grad.device() == param.device(),
              "sgd_step_: the gradient (", shape_str(grad.shape()), " ", dtype_name(grad.dtype()), " on ",
              grad.device().str(), ") does not match the parameter (", shape_str(param.shape()), " ",
              dtype_name(param.dtype()), " on ", param.device().str(), ")");
  if (step.momentum != 0.0) {
    if (!momentum_buffer.defined()) {
      momentum_buffer = empty(param.shape(), param.options());
      step.first = true;
    }
    GNDET_CHECK(momentum_buffer.shape() == param.shape() && momentum_buffer.dtype() == param.dtype() &&
                    momentum_buffer.device() == param.device(),
                "sgd_step_: the momentum buffer (", shape_str(momentum_buffer.shape()), " ",
                dtype_name(momentum_buffer.dtype()), " on ", momentum_buffer.device().str(),
                ") does not match the parameter");
  }
  if (param.numel() == 0) return;
  // The kernel walks flat arrays; a view (never a module's parameter, perhaps a user's) is
  // updated through contiguous copies.
  Tensor p = param.is_contiguous() ? param : param.contiguous();
  Tensor buf = step.momentum == 0.0 || momentum_buffer.is_contiguous() ? momentum_buffer : momentum_buffer.contiguous();
  sgd_step_kernel(param.device(), p, grad.contiguous(), step.momentum != 0.0 ? buf : Tensor(), step);
  if (!p.is_same(param)) param.copy_(p);
  if (step.momentum != 0.0 && !buf.is_same(momentum_buffer)) momentum_buffer.copy_(buf);
  param.storage()->bump_version();
  if (step.momentum != 0.0) momentum_buffer.storage()->bump_version();
}

}  // namespace gndet
