// conv2d and conv_transpose2d: argument checks, output sizes, dispatch and gradients.
#include "ops/conv.h"

#include <cstdio>
#include <string>

#include "autograd/function.h"
#include "autograd/profiler.h"
#include "ops/autocast.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(conv2d_forward_kernel, void(const Tensor&, const Tensor&, const Tensor&, const Tensor&, Conv2dParams));
GNDET_DEFINE_KERNEL(conv2d_backward_input_kernel, void(const Tensor&, const Tensor&, const Tensor&, Conv2dParams));
GNDET_DEFINE_KERNEL(conv2d_backward_weight_kernel, void(const Tensor&, const Tensor&, const Tensor&, Conv2dParams));
GNDET_DEFINE_KERNEL(channel_sum_kernel, void(const Tensor&, const Tensor&));

using autograd::record;
using autograd::Saved;

namespace {

GNDET_OP(kConv2d, "conv2d");
GNDET_OP(kConvTranspose2d, "conv_transpose2d");

// snprintf, not string concatenation: GCC 12's -Wrestrict misfires on "(" + std::string (bug 105329)
std::string pair_str(Pair p) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "(%lld, %lld)", static_cast<long long>(p[0]), static_cast<long long>(p[1]));
  return buf;
}

void check_geometry(const char* op, const Conv2dParams& p) {
  GNDET_CHECK(p.stride[0] > 0 && p.stride[1] > 0, op, ": stride must be positive, got ", pair_str(p.stride));
  GNDET_CHECK(p.padding[0] >= 0 && p.padding[1] >= 0, op, ": padding must be non-negative, got ", pair_str(p.padding));
  GNDET_CHECK(p.dilation[0] > 0 && p.dilation[1] > 0, op, ": dilation must be positive, got ", pair_str(p.dilation));
  GNDET_CHECK(p.groups > 0, op, ": groups must be positive, got ", p.groups);
}

void check_operands(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, const char* w_layout) {
  GNDET_CHECK(x.defined() && w.defined(), op, ": input and weight must be defined");
  GNDET_CHECK(x.dim() == 4, op, ": expected input (N, C_in, H, W), got ", shape_str(x.shape()));
  GNDET_CHECK(w.dim() == 4, op, ": expected weight ", w_layout, ", got ", shape_str(w.shape()));
  GNDET_CHECK(is_floating(x.dtype()), op, ": expected a float32 or float64 input, got ", dtype_name(x.dtype()));
  GNDET_CHECK(w.dtype() == x.dtype() && w.device() == x.device(), op, ": weight is ", dtype_name(w.dtype()), " on ",
              w.device().str(), ", input ", dtype_name(x.dtype()), " on ", x.device().str());
  if (b.defined()) {
    GNDET_CHECK(b.dtype() == x.dtype() && b.device() == x.device(), op, ": bias is ", dtype_name(b.dtype()), " on ",
                b.device().str(), ", input ", dtype_name(x.dtype()), " on ", x.device().str());
  }
}

void check_bias(const char* op, const Tensor& b, int64_t out_channels) {
  if (!b.defined()) return;
  GNDET_CHECK(b.dim() == 1 && b.size(0) == out_channels, op, ": expected bias (", out_channels, "), got ",
              shape_str(b.shape()));
}

// A detached, contiguous copy-free view when possible: what kernels take.
Tensor raw(const Tensor& t) { return t.defined() ? t.detach().contiguous() : Tensor(); }

// b (C) seen as (1, C, 1, 1) for a broadcast add into an (N, C, H, W) tensor.
Tensor as_channel_bias(const Tensor& b) { return make_view(b, {1, b.size(0), 1, 1}, {0, 1, 0, 0}, b.offset()); }

Tensor channel_sum(const Tensor& dy) {
  Tensor db = empty({dy.size(1)}, dy.options());
  if (db.numel() == 0) return db;
  if (dy.numel() == 0) return db.zero_();
  channel_sum_kernel(dy.device(), db, dy);
  return db;
}

// The three gradient computations shared by both ops, each skipped when its output is empty.
Tensor conv_input_grad(const Shape& x_shape, const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  Tensor dx = empty(x_shape, dy.options());
  if (dx.numel() == 0) return dx;
  if (dy.numel() == 0 || w.numel() == 0) return dx.zero_();
  autograd::profiler::set_next_kernel_flops(2.0 * static_cast<double>(dy.numel()) * static_cast<double>(w.numel() / w.size(0)));
  conv2d_backward_input_kernel(dy.device(), dx, dy, w, p);
  return dx;
}

Tensor conv_output(const Shape& y_shape, const Tensor& x, const Tensor& w, const Tensor& b, const Conv2dParams& p) {
  Tensor y = empty(y_shape, x.options());
  if (y.numel() == 0) return y;
  if (x.numel() == 0 || w.numel() == 0) {
    y.zero_();
    if (b.defined()) add_(y, as_channel_bias(b));
    return y;
  }
  autograd::profiler::set_next_kernel_flops(2.0 * static_cast<double>(y.numel()) * static_cast<double>(w.numel() / w.size(0)));
  conv2d_forward_kernel(x.device(), y, x, w, b, p);
  return y;
}

Tensor conv_weight_grad(const Shape& w_shape, const Tensor& dy, const Tensor& x, const Conv2dParams& p) {
  Tensor dw = empty(w_shape, dy.options());
  if (dw.numel() == 0) return dw;
  if (dy.numel() == 0 || x.numel() == 0) return dw.zero_();
  autograd::profiler::set_next_kernel_flops(2.0 * static_cast<double>(dy.numel()) * static_cast<double>(dw.numel() / dw.size(0)));
  conv2d_backward_weight_kernel(dy.device(), dw, dy, x, p);
  return dw;
}

}  // namespace

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& b, Pair stride, Pair padding, Pair dilation,
              int64_t groups) {
  const char* op = "conv2d";
  const Conv2dParams p{stride, padding, dilation, groups};
  check_geometry(op, p);
  check_operands(op, x, w, b, "(C_out, C_in/groups, kh, kw)");
  const int64_t N = x.size(0), C_in = x.size(1), C_out = w.size(0);
  GNDET_CHECK(w.size(1) * groups == C_in, op, ": input channels ", C_in, " != weight's ", w.size(1), " * groups ",
              groups, " (input ", shape_str(x.shape()), ", weight ", shape_str(w.shape()), ")");
  GNDET_CHECK(C_out % groups == 0, op, ": output channels ", C_out, " (weight ", shape_str(w.shape()),
              ") not divisible by groups ", groups);
  check_bias(op, b, C_out);
  Shape y_shape{N, C_out, 0, 0};
  for (int d = 0; d < 2; ++d) {
    const int64_t in = x.size(2 + d) + 2 * padding[d];
    const int64_t span = dilation[d] * (w.size(2 + d) - 1) + 1;
    GNDET_CHECK(w.size(2 + d) > 0 && in >= span, op, ": input ", shape_str(x.shape()), " padded by ", pair_str(padding),
                " is smaller than the kernel ", shape_str({w.size(2), w.size(3)}), " dilated by ", pair_str(dilation));
    y_shape[2 + d] = (in - span) / stride[d] + 1;
  }

  // Under autocast the product runs on 16-bit operands and the bias is added after the rounding
  // (ops/autocast.h); the float32 inputs are what backward keeps.
  const autocast::Product prod = autocast::Product::for_input(x);
  const Tensor xr = raw(x), wr = raw(w), br = raw(b);
  Tensor y = prod.result(conv_output(y_shape, prod.operand(xr), prod.operand(wr), prod.reduced() ? Tensor() : br, p));
  if (prod.reduced() && br.defined() && y.numel() > 0) add_(y, as_channel_bias(br));
  const bool need_x = x.requires_grad(), need_w = w.requires_grad(), need_b = b.defined() && b.requires_grad();
  record(kConv2d, {x, w, b}, {y},
         [sx = Saved(need_w ? xr : Tensor()), sw = Saved(need_x ? wr : Tensor()), x_shape = x.shape(),
          w_shape = w.shape(), p, prod, need_x, need_w, need_b](const Tensors& g) {
           const Tensor dy = g[0].contiguous();
           const Tensor dy_op = prod.operand(dy);
           Tensors grads(3);
           if (need_x) grads[0] = prod.result(conv_input_grad(x_shape, dy_op, prod.operand(sw.get()), p));
           if (need_w) grads[1] = prod.result(conv_weight_grad(w_shape, dy_op, prod.operand(sx.get()), p));
           if (need_b) grads[2] = channel_sum(dy);
           return grads;
         });
  return y;
}

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& b, Pair stride, Pair padding,
                        Pair output_padding, Pair dilation, int64_t groups) {
  const char* op = "conv_transpose2d";
  const Conv2dParams p{stride, padding, dilation, groups};
  check_geometry(op, p);
  check_operands(op, x, w, b, "(C_in, C_out/groups, kh, kw)");
  const int64_t N = x.size(0), C_in = x.size(1), C_out = w.size(1) * groups;
  GNDET_CHECK(w.size(0) == C_in, op, ": input channels ", C_in, " != weight's ", w.size(0),
              " (weight is (C_in, C_out/groups, kh, kw), got ", shape_str(w.shape()), ")");
  GNDET_CHECK(C_in % groups == 0, op, ": input channels ", C_in, " not divisible by groups ", groups);
  check_bias(op, b, C_out);
  Shape y_shape{N, C_out, 0, 0};
  for (int d = 0; d < 2; ++d) {
    GNDET_CHECK(output_padding[d] >= 0 && (output_padding[d] < stride[d] || output_padding[d] < dilation[d]), op,
                ": output_padding ", pair_str(output_padding), " must be smaller than the stride ", pair_str(stride),
                " or the dilation ", pair_str(dilation));
    y_shape[2 + d] = (x.size(2 + d) - 1) * stride[d] - 2 * padding[d] + dilation[d] * (w.size(2 + d) - 1) +
                     output_padding[d] + 1;
    GNDET_CHECK(w.size(2 + d) > 0 && y_shape[2 + d] > 0, op, ": input ", shape_str(x.shape()), " with kernel ",
                shape_str({w.size(2), w.size(3)}), ", stride ", pair_str(stride), " and padding ", pair_str(padding),
                " gives an empty output");
  }

  const autocast::Product prod = autocast::Product::for_input(x);  // as in conv2d
  const Tensor xr = raw(x), wr = raw(w), br = raw(b);
  // The transposed convolution is conv2d's input gradient with x in the role of dy.
  Tensor y = prod.result(conv_input_grad(y_shape, prod.operand(xr), prod.operand(wr), p));
  if (br.defined() && y.numel() > 0) add_(y, as_channel_bias(br));
  const bool need_x = x.requires_grad(), need_w = w.requires_grad(), need_b = b.defined() && b.requires_grad();
  record(kConvTranspose2d, {x, w, b}, {y},
         [sx = Saved(need_w ? xr : Tensor()), sw = Saved(need_x ? wr : Tensor()), x_shape = x.shape(),
          w_shape = w.shape(), p, prod, need_x, need_w, need_b](const Tensors& g) {
           const Tensor dy = g[0].contiguous();
           const Tensor dy_op = prod.operand(dy);
           Tensors grads(3);
           if (need_x) grads[0] = prod.result(conv_output(x_shape, dy_op, prod.operand(sw.get()), Tensor(), p));
           if (need_w) grads[1] = prod.result(conv_weight_grad(w_shape, prod.operand(sx.get()), dy_op, p));
           if (need_b) grads[2] = channel_sum(dy);
           return grads;
         });
  return y;
}

}  // namespace gndet
