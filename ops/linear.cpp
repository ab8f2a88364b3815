#include "ops/linear.h"

#include "autograd/function.h"
#include "autograd/profiler.h"
#include "ops/autocast.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "tensor/factory.h"

namespace gndet {

using autograd::record;
using autograd::Saved;

namespace {

GNDET_OP(kLinear, "linear");

// a (M, K) as (1, M, K): the batched form bmm_kernel takes. Strides are kept (a may be a transpose).
Tensor batch_of_one(const Tensor& a) {
  return make_view(a, {1, a.size(0), a.size(1)}, {0, a.stride(0), a.stride(1)}, a.offset());
}

// out (M, N) = a (M, K) @ b (K, N), where a and b are contiguous or transposed contiguous matrices.
Tensor gemm(const Tensor& a, const Tensor& b) {
  Tensor out = empty({a.size(0), b.size(1)}, a.options());
  if (out.numel() == 0) return out;
  if (a.size(1) == 0) return out.zero_();
  autograd::profiler::set_next_kernel_flops(2.0 * static_cast<double>(out.numel()) * static_cast<double>(a.size(1)));
  bmm_kernel(a.device(), batch_of_one(out), batch_of_one(a), batch_of_one(b));
  return out;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) {
  GNDET_CHECK(x.defined() && w.defined(), "linear: input and weight must be defined");
  GNDET_CHECK(x.dim() >= 1 && w.dim() == 2, "linear: expected input (..., in) and weight (out, in), got ",
              shape_str(x.shape()), " and ", shape_str(w.shape()));
  const int64_t in = w.size(1), out = w.size(0);
  GNDET_CHECK(x.size(-1) == in, "linear: input features ", x.size(-1), " != weight's ", in, " (input ",
              shape_str(x.shape()), ", weight ", shape_str(w.shape()), ")");
  GNDET_CHECK(is_floating(x.dtype()), "linear: expected a float32 or float64 input, got ", dtype_name(x.dtype()));
  GNDET_CHECK(w.dtype() == x.dtype() && w.device() == x.device(), "linear: weight is ", dtype_name(w.dtype()), " on ",
              w.device().str(), ", input ", dtype_name(x.dtype()), " on ", x.device().str());
  if (b.defined()) {
    GNDET_CHECK(b.dim() == 1 && b.size(0) == out, "linear: expected bias (", out, "), got ", shape_str(b.shape()));
    GNDET_CHECK(b.dtype() == x.dtype() && b.device() == x.device(), "linear: bias is ", dtype_name(b.dtype()), " on ",
                b.device().str(), ", input ", dtype_name(x.dtype()), " on ", x.device().str());
  }
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  const Tensor x2 = x.detach().contiguous().reshape({rows, in});
  const Tensor w2 = w.detach().contiguous();
  // Under autocast the products run on 16-bit operands, the bias is added in float32 (ops/autocast.h).
  const autocast::Product prod = autocast::Product::for_input(x);
  Tensor y2 = prod.result(gemm(prod.operand(x2), prod.operand(w2).t()));
  if (b.defined() && y2.numel() > 0) add_(y2, b.detach());
  Shape y_shape = x.shape();
  y_shape.back() = out;
  Tensor y = y2.reshape(y_shape);

  const bool need_x = x.requires_grad(), need_w = w.requires_grad(), need_b = b.defined() && b.requires_grad();
  record(kLinear, {x, w, b}, {y},
         [sx = Saved(need_w ? x2 : Tensor()), sw = Saved(need_x ? w2 : Tensor()), x_shape = x.shape(), rows, out,
          prod, need_x, need_w, need_b](const Tensors& g) {
           const Tensor dy = g[0].contiguous().reshape({rows, out});
           const Tensor dy_op = prod.operand(dy);
           Tensors grads(3);
           if (need_x) grads[0] = prod.result(gemm(dy_op, prod.operand(sw.get()))).reshape(x_shape);  // (rows, out) @ (out, in)
           if (need_w) grads[1] = prod.result(gemm(dy_op.t(), prod.operand(sx.get())));                // (out, rows) @ (rows, in)
           if (need_b) {
             grads[2] = empty({out}, dy.options());
             if (rows == 0) {
               grads[2].zero_();
             } else if (out > 0) {
               sum_cols_kernel(dy.device(), grads[2], dy, 1.0);
             }
           }
           return grads;
         });
  return y;
}

}  // namespace gndet
