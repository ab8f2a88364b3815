// The op: argument checks, the kernel call for x's device, and the autograd wiring
// (autograd/function.h), as in gndet's own ops/softmax.cpp.
#include "silu.h"

#include "autograd/function.h"
#include "tensor/factory.h"

namespace custom_op {

using namespace gndet;

// The slots that silu.h declares: exactly one definition, next to the op that calls them.
GNDET_DEFINE_KERNEL(silu_forward_kernel, void(const Tensor&, const Tensor&));
GNDET_DEFINE_KERNEL(silu_backward_kernel, void(const Tensor&, const Tensor&, const Tensor&));

// Registers "silu" in the library's list of differentiable ops (autograd::registered_ops()).
GNDET_OP(kSilu, "silu");

Tensor silu(const Tensor& x) {
  GNDET_CHECK(is_floating(x.dtype()), "silu: expected a float32 or float64 tensor, got ", dtype_name(x.dtype()));
  // The kernels read plain arrays: a strided view is copied once here rather than handled by
  // every kernel. detach(): this copy is the kernel's input, not a step autograd should see.
  const Tensor xc = x.detach().contiguous();
  Tensor y = empty(x.shape(), x.options());
  if (y.numel() > 0) silu_forward_kernel(x.device(), y, xc);
  // The backward needs x, not y (silu cannot be inverted cheaply): keep x as a Saved tensor,
  // which is detached (no reference cycle through the graph) and checks that nobody wrote
  // into x in place before backward ran.
  autograd::record(kSilu, {x}, {y}, [sx = autograd::Saved(xc)](const Tensors& g) {
    const Tensor x_saved = sx.get();
    const Tensor grad_y = g[0].contiguous();
    Tensor grad_x = empty(x_saved.shape(), x_saved.options());
    if (grad_x.numel() > 0) silu_backward_kernel(x_saved.device(), grad_x, grad_y, x_saved);
    return Tensors{grad_x};
  });
  return y;
}

}  // namespace custom_op
