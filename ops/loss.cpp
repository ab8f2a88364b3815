// Losses: each elementwise (or per-sample) loss is one op with its own kernel and backward; the
// weighting and the reduction are then ordinary differentiable ops (mul, sum, div).
#include "ops/loss.h"

#include "autograd/function.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/strided.h"

namespace gndet {

GNDET_DEFINE_KERNEL(cross_entropy_kernel, void(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                               const Tensor&, int64_t));
GNDET_DEFINE_KERNEL(cross_entropy_backward_kernel, void(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                        const Tensor&, int64_t));
GNDET_DEFINE_KERNEL(bce_with_logits_kernel, void(const Tensor&, const Tensor&, const Tensor&));
GNDET_DEFINE_KERNEL(bce_with_logits_backward_kernel,
                    void(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&));
GNDET_DEFINE_KERNEL(smooth_l1_kernel, void(const Tensor&, const Tensor&, const Tensor&, double));
GNDET_DEFINE_KERNEL(smooth_l1_backward_kernel, void(const Tensor&, const Tensor&, const Tensor&, const Tensor&, double));

using autograd::record;
using autograd::Saved;

namespace {

GNDET_OP(kCrossEntropy, "cross_entropy");
GNDET_OP(kBceWithLogits, "binary_cross_entropy_with_logits");
GNDET_OP(kL1Loss, "l1_loss");
GNDET_OP(kSmoothL1Loss, "smooth_l1_loss");

Tensor raw(const Tensor& t) { return t.defined() ? t.detach().contiguous() : Tensor(); }

Tensor reduce(const Tensor& losses, Reduction r) {
  switch (r) {
    case Reduction::None: return losses;
    case Reduction::Sum: return sum(losses);
    case Reduction::Mean: return losses.numel() == 0 ? sum(losses) / 0.0 : mean(losses);  // NaN, as PyTorch
  }
  GNDET_FAIL("loss: unknown reduction");
}

void check_pair(const char* op, const Tensor& a, const Tensor& b, const char* a_name, const char* b_name) {
  GNDET_CHECK(a.defined() && b.defined(), op, ": ", a_name, " and ", b_name, " must be defined");
  GNDET_CHECK(is_floating(a.dtype()), op, ": expected a float32 or float64 ", a_name, ", got ", dtype_name(a.dtype()));
  GNDET_CHECK(a.shape() == b.shape(), op, ": ", a_name, " ", shape_str(a.shape()), " and ", b_name, " ",
              shape_str(b.shape()), " must have the same shape");
  GNDET_CHECK(a.dtype() == b.dtype() && a.device() == b.device(), op, ": ", a_name, " is ", dtype_name(a.dtype()),
              " on ", a.device().str(), ", ", b_name, " ", dtype_name(b.dtype()), " on ", b.device().str());
}

// The L1 family: one op per public name, one kernel pair for both.
Tensor smooth_l1_elementwise(const autograd::OpDef& op, const Tensor& pred, const Tensor& target, double beta) {
  check_pair(op.name, pred, target, "pred", "target");
  GNDET_CHECK(beta >= 0, op.name, ": beta must be non-negative, got ", beta);
  const Tensor p = raw(pred), t = raw(target);
  Tensor out = empty(p.shape(), p.options());
  if (out.numel() > 0) smooth_l1_kernel(p.device(), out, p, t, beta);
  const bool need_t = target.requires_grad();
  record(op, {pred, target}, {out}, [sp = Saved(p), st = Saved(t), beta, need_t](const Tensors& g) {
    const Tensor pv = sp.get();
    Tensor dp = empty(pv.shape(), pv.options());
    if (dp.numel() > 0) smooth_l1_backward_kernel(dp.device(), dp, g[0].contiguous(), pv, st.get(), beta);
    return Tensors{dp, need_t ? neg(dp) : Tensor()};
  });
  return out;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& class_weight, int64_t ignore_index,
                     Reduction reduction) {
  const char* op = "cross_entropy";
  GNDET_CHECK(logits.defined() && target.defined(), op, ": logits and target must be defined");
  GNDET_CHECK(logits.dim() == 2, op, ": expected logits (N, C), got ", shape_str(logits.shape()));
  GNDET_CHECK(is_floating(logits.dtype()), op, ": expected float32 or float64 logits, got ", dtype_name(logits.dtype()));
  const int64_t N = logits.size(0), C = logits.size(1);
  GNDET_CHECK(target.dim() == 1 && target.size(0) == N, op, ": expected target (", N, ") for logits ",
              shape_str(logits.shape()), ", got ", shape_str(target.shape()));
  GNDET_CHECK(target.dtype() == kInt64 || target.dtype() == kInt32, op, ": target must be int64 class indices, got ",
              dtype_name(target.dtype()));
  GNDET_CHECK(target.device() == logits.device(), op, ": target on ", target.device().str(), ", logits on ",
              logits.device().str());
  GNDET_CHECK(C > 0 || N == 0, op, ": logits ", shape_str(logits.shape()), " have no classes");
  if (class_weight.defined()) {
    GNDET_CHECK(class_weight.dim() == 1 && class_weight.size(0) == C, op, ": expected class_weight (", C, "), got ",
                shape_str(class_weight.shape()));
    GNDET_CHECK(class_weight.dtype() == logits.dtype() && class_weight.device() == logits.device(), op,
                ": class_weight is ", dtype_name(class_weight.dtype()), " on ", class_weight.device().str(),
                ", logits ", dtype_name(logits.dtype()), " on ", logits.device().str());
  }
  const Tensor x = raw(logits), t = raw(target), w = raw(class_weight);
  Tensor losses = empty({N}, x.options()), sample_weights = empty({N}, x.options());
  if (N > 0) cross_entropy_kernel(x.device(), losses, sample_weights, x, t, w, ignore_index);
  record(kCrossEntropy, {logits}, {losses},
         [sx = Saved(x), st = Saved(t), sw = Saved(w), ignore_index](const Tensors& g) {
           const Tensor xv = sx.get();
           Tensor dx = empty(xv.shape(), xv.options());
           if (dx.numel() > 0) {
             cross_entropy_backward_kernel(dx.device(), dx, g[0].contiguous(), xv, st.get(), sw.get(), ignore_index);
           }
           return Tensors{dx};
         });
  if (reduction != Reduction::Mean) return reduce(losses, reduction);
  return sum(losses) / sum(sample_weights);  // the weighted mean; NaN when every target is ignored, as PyTorch
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& weight,
                                        Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  check_pair(op, logits, target, "logits", "target");
  const Tensor x = raw(logits), t = raw(target);
  Tensor out = empty(x.shape(), x.options());
  if (out.numel() > 0) bce_with_logits_kernel(x.device(), out, x, t);
  const bool need_t = target.requires_grad();
  record(kBceWithLogits, {logits, target}, {out}, [sx = Saved(x), st = Saved(t), need_t](const Tensors& g) {
    const Tensor xv = sx.get();
    Tensor dx = empty(xv.shape(), xv.options());
    Tensor dt = need_t ? empty(xv.shape(), xv.options()) : Tensor();
    if (dx.numel() > 0) bce_with_logits_backward_kernel(dx.device(), dx, dt, g[0].contiguous(), xv, st.get());
    return Tensors{dx, dt};
  });
  if (weight.defined()) {
    GNDET_CHECK(broadcast_shapes(weight.shape(), logits.shape(), op) == logits.shape(), op, ": weight ",
                shape_str(weight.shape()), " does not broadcast to logits ", shape_str(logits.shape()));
    out = out * weight;
  }
  return reduce(out, reduction);
}

Tensor l1_loss(const Tensor& pred, const Tensor& target, Reduction reduction) {
  return reduce(smooth_l1_elementwise(kL1Loss, pred, target, 0.0), reduction);
}

Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, double beta, Reduction reduction) {
  return reduce(smooth_l1_elementwise(kSmoothL1Loss, pred, target, beta), reduction);
}

}  // namespace gndet
