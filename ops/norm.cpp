#include "ops/norm.h"

#include "autograd/function.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(group_norm_kernel, void(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                            const Tensor&, int64_t, double));
GNDET_DEFINE_KERNEL(group_norm_relu_kernel, void(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                 const Tensor&, const Tensor&, int64_t, double));
GNDET_DEFINE_KERNEL(group_norm_backward_kernel, void(const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                                     const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t));
GNDET_DEFINE_KERNEL(weight_standardization_kernel, void(const Tensor&, const Tensor&, double));
GNDET_DEFINE_KERNEL(weight_standardization_backward_kernel, void(const Tensor&, const Tensor&, const Tensor&, double));
GNDET_DEFINE_KERNEL(channel_affine_kernel, void(const Tensor&, const Tensor&, const Tensor&, const Tensor&));

using autograd::record;
using autograd::Saved;

namespace {

GNDET_OP(kGroupNorm, "group_norm");
GNDET_OP(kGroupNormRelu, "group_norm_relu");
GNDET_OP(kWeightStandardization, "weight_standardization");
GNDET_OP(kFrozenBatchNorm, "frozen_batch_norm");

Tensor raw(const Tensor& t) { return t.defined() ? t.detach().contiguous() : Tensor(); }

// A contiguous t seen as (N, C, S).
Tensor as_ncs(const Tensor& t, int64_t N, int64_t C, int64_t S) {
  return make_view(t, {N, C, S}, {C * S, S, 1}, t.offset());
}

void check_channel_tensor(const char* op, const char* what, const Tensor& t, const Tensor& x, int64_t C) {
  GNDET_CHECK(t.dim() == 1 && t.size(0) == C, op, ": expected ", what, " (", C, ") for input ", shape_str(x.shape()),
              ", got ", shape_str(t.shape()));
  GNDET_CHECK(t.dtype() == x.dtype() && t.device() == x.device(), op, ": ", what, " is ", dtype_name(t.dtype()), " on ",
              t.device().str(), ", input ", dtype_name(x.dtype()), " on ", x.device().str());
}

void check_input(const char* op, const Tensor& x) {
  GNDET_CHECK(x.defined() && x.dim() >= 2, op, ": expected input (N, C, *), got ",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  GNDET_CHECK(is_floating(x.dtype()), op, ": expected a float32 or float64 input, got ", dtype_name(x.dtype()));
}

Tensor channel_affine(const Tensor& x, const Tensor& scale, const Tensor& shift) {
  const int64_t N = x.size(0), C = x.size(1), S = N * C == 0 ? 0 : x.numel() / (N * C);
  Tensor y = empty(x.shape(), x.options());
  if (y.numel() > 0) channel_affine_kernel(x.device(), as_ncs(y, N, C, S), as_ncs(x, N, C, S), scale, shift);
  return y;
}

// group_norm and group_norm_relu: the checks, the kernel, and the backward (through relu's mask
// of the output first when `relu`).
Tensor group_norm_impl(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps, bool relu) {
  const char* op = relu ? "group_norm_relu" : "group_norm";
  check_input(op, x);
  const int64_t N = x.size(0), C = x.size(1), G = num_groups;
  GNDET_CHECK(G > 0 && C % G == 0, op, ": channels ", C, " of input ", shape_str(x.shape()),
              " are not divisible by num_groups ", G);
  GNDET_CHECK(eps >= 0, op, ": eps must be non-negative, got ", eps);
  if (weight.defined()) check_channel_tensor(op, "weight", weight, x, C);
  if (bias.defined()) check_channel_tensor(op, "bias", bias, x, C);
  const int64_t S = N * C == 0 ? 0 : x.numel() / (N * C);

  const Tensor xr = raw(x), wr = raw(weight), br = raw(bias);
  Tensor y = empty(x.shape(), x.options());
  Tensor mean = empty({N, G}, x.options()), rstd = empty({N, G}, x.options());
  if (N > 0) {
    if (relu) {
      group_norm_relu_kernel(x.device(), as_ncs(y, N, C, S), mean, rstd, as_ncs(xr, N, C, S), wr, br, G, eps);
    } else {
      group_norm_kernel(x.device(), as_ncs(y, N, C, S), mean, rstd, as_ncs(xr, N, C, S), wr, br, G, eps);
    }
  }

  const bool need_x = x.requires_grad(), need_w = weight.defined() && weight.requires_grad(),
             need_b = bias.defined() && bias.requires_grad();
  record(relu ? kGroupNormRelu : kGroupNorm, {x, weight, bias}, {y},
         [sx = Saved(xr), sm = Saved(mean), sr = Saved(rstd), sw = Saved(wr), sy = Saved(relu ? y : Tensor()), G, N, C,
          S, need_x, need_w, need_b, relu](const Tensors& g) {
           const Tensor dy = (relu ? relu_backward(g[0], sy.get()) : g[0]).contiguous();
           Tensors grads(3);
           if (need_x) grads[0] = empty(dy.shape(), dy.options());
           if (need_w) grads[1] = empty({C}, dy.options());
           if (need_b) grads[2] = empty({C}, dy.options());
           if (N * C * S == 0) {
             for (Tensor& t : grads) {
               if (t.defined()) t.zero_();
             }
             return grads;
           }
           const Tensor dx = need_x ? as_ncs(grads[0], N, C, S) : Tensor();
           group_norm_backward_kernel(dy.device(), dx, grads[1], grads[2], as_ncs(dy, N, C, S),
                                      as_ncs(sx.get(), N, C, S), sm.get(), sr.get(), sw.get(), G);
           return grads;
         });
  return y;
}

}  // namespace

Tensor group_norm(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  return group_norm_impl(x, num_groups, weight, bias, eps, /*relu=*/false);
}

Tensor group_norm_relu(const Tensor& x, int64_t num_groups, const Tensor& weight, const Tensor& bias, double eps) {
  if (x.defined() && !x.device().is_cpu()) return relu(group_norm(x, num_groups, weight, bias, eps));
  return group_norm_impl(x, num_groups, weight, bias, eps, /*relu=*/true);
}

Tensor weight_standardization(const Tensor& w, double eps) {
  const char* op = "weight_standardization";
  GNDET_CHECK(w.defined() && w.dim() >= 2, op, ": expected a weight (C_out, C_in/groups, kh, kw), got ",
              w.defined() ? shape_str(w.shape()) : std::string("undefined"));
  GNDET_CHECK(is_floating(w.dtype()), op, ": expected a float32 or float64 weight, got ", dtype_name(w.dtype()));
  const int64_t O = w.size(0), R = O == 0 ? 0 : w.numel() / O;
  GNDET_CHECK(O == 0 || R >= 2, op, ": each output channel of weight ", shape_str(w.shape()),
              " has ", R, " value(s); the unbiased std needs at least 2");
  const Tensor wr = raw(w);
  Tensor y = empty(w.shape(), w.options());
  auto rows = [O, R](const Tensor& t) { return make_view(t, {O, R}, {R, 1}, t.offset()); };
  if (y.numel() > 0) weight_standardization_kernel(w.device(), rows(y), rows(wr), eps);
  record(kWeightStandardization, {w}, {y}, [sw = Saved(wr), rows, eps](const Tensors& g) {
    const Tensor wv = sw.get();
    Tensor dw = empty(wv.shape(), wv.options());
    if (dw.numel() > 0) weight_standardization_backward_kernel(dw.device(), rows(dw), rows(g[0].contiguous()), rows(wv), eps);
    return Tensors{dw};
  });
  return y;
}

Tensor frozen_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                         const Tensor& running_var, double eps) {
  const char* op = "frozen_batch_norm";
  check_input(op, x);
  const int64_t C = x.size(1);
  const std::pair<const char*, const Tensor*> buffers[] = {
      {"weight", &weight}, {"bias", &bias}, {"running_mean", &running_mean}, {"running_var", &running_var}};
  for (const auto& [name, t] : buffers) {
    GNDET_CHECK(t->defined(), op, ": ", name, " must be defined");
    check_channel_tensor(op, name, *t, x, C);
  }
  Tensor scale, shift;
  {
    autograd::NoGradGuard no_grad;  // buffers: never differentiated
    scale = (weight.detach() * rsqrt(running_var.detach() + eps)).contiguous();
    shift = (bias.detach() - running_mean.detach() * scale).contiguous();
  }
  const Tensor xr = raw(x);
  Tensor y = channel_affine(xr, scale, shift);
  record(kFrozenBatchNorm, {x}, {y}, [sc = Saved(scale)](const Tensors& g) {
    return Tensors{channel_affine(g[0].contiguous(), sc.get(), Tensor())};
  });
  return y;
}

}  // namespace gndet
