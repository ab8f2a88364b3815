#include "ops/softmax.h"

#include "autograd/function.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(softmax_rows_kernel, void(const Tensor&, const Tensor&, bool));
GNDET_DEFINE_KERNEL(softmax_backward_rows_kernel, void(const Tensor&, const Tensor&, const Tensor&, bool));

using autograd::record;
using autograd::Saved;

namespace {

GNDET_OP(kSoftmax, "softmax");
GNDET_OP(kLogSoftmax, "log_softmax");

// t with `d` moved last, contiguous, seen as (M, R).
Tensor rows_of(const Tensor& t, int64_t d) {
  const Tensor moved = t.detach().transpose(d, -1).contiguous();
  const int64_t R = moved.dim() == 0 ? 1 : moved.shape().back();
  return make_view(moved, {R == 0 ? 0 : moved.numel() / R, R}, {R, 1}, moved.offset());
}

// Inverse of rows_of for a result laid out like rows_of(x, d).
Tensor from_rows(const Tensor& rows, const Tensor& like, int64_t d) {
  Shape moved = like.shape();
  if (!moved.empty()) std::swap(moved[d], moved.back());
  return make_view(rows, moved, contiguous_strides(moved), rows.offset()).transpose(d, -1).contiguous();
}

Tensor softmax_impl(const Tensor& x, int64_t dim, bool log, const autograd::OpDef& op) {
  GNDET_CHECK(is_floating(x.dtype()), op.name, ": expected a floating tensor, got ", dtype_name(x.dtype()));
  const int64_t d = wrap_dim(dim, x.dim(), op.name);
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    const Tensor in = rows_of(x, d);
    Tensor out = empty(in.shape(), x.options());
    if (out.numel() > 0) softmax_rows_kernel(x.device(), out, in, log);
    y = from_rows(out, x, d);
  }
  record(op, {x}, {y}, [d, log, sy = Saved(y)](const Tensors& g) {
    const Tensor yv = sy.get();
    const Tensor go = rows_of(g[0], d), yr = rows_of(yv, d);
    Tensor gi = empty(go.shape(), go.options());
    if (gi.numel() > 0) softmax_backward_rows_kernel(go.device(), gi, go, yr, log);
    return Tensors{from_rows(gi, yv, d)};
  });
  return y;
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false, kSoftmax); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true, kLogSoftmax); }

}  // namespace gndet
