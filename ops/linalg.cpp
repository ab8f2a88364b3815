#include "ops/linalg.h"

#include "autograd/function.h"
#include "autograd/profiler.h"
#include "ops/autocast.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(bmm_kernel, void(const Tensor&, const Tensor&, const Tensor&));

using autograd::record;
using autograd::Saved;

namespace {

GNDET_OP(kBmm, "bmm");

// t itself when every matrix in it has a GEMM-readable layout, else a contiguous copy.
Tensor gemm_ready(const Tensor& t) {
  MatLayout layout;
  const int64_t n = t.dim();
  if (gemm_layout(t.shape()[n - 2], t.shape()[n - 1], t.strides()[n - 2], t.strides()[n - 1], &layout)) return t;
  return t.contiguous();
}

Tensor bmm_raw(const Tensor& a, const Tensor& b) {
  Tensor out = empty({a.size(0), a.size(1), b.size(2)}, a.options());
  if (out.numel() == 0) return out;
  if (a.size(2) == 0) return out.zero_();
  autograd::profiler::set_next_kernel_flops(2.0 * static_cast<double>(out.numel()) * static_cast<double>(a.size(2)));
  bmm_kernel(a.device(), out, gemm_ready(a), gemm_ready(b));
  return out;
}

}  // namespace

Tensor bmm(const Tensor& a, const Tensor& b) {
  GNDET_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected (B, M, K) and (B, K, N), got ", shape_str(a.shape()), " and ",
              shape_str(b.shape()));
  GNDET_CHECK(a.size(0) == b.size(0) && a.size(2) == b.size(1), "bmm: shapes ", shape_str(a.shape()), " and ",
              shape_str(b.shape()), " do not multiply");
  GNDET_CHECK(a.dtype() == b.dtype() && a.device() == b.device(), "bmm: operands are ", dtype_name(a.dtype()), " on ",
              a.device().str(), " and ", dtype_name(b.dtype()), " on ", b.device().str());
  GNDET_CHECK(is_floating(a.dtype()), "bmm: expected floating tensors, got ", dtype_name(a.dtype()));
  // Under autocast the products run on 16-bit operands (ops/autocast.h); backward keeps a and b.
  const autocast::Product prod = autocast::Product::for_input(a);
  Tensor y = prod.result(bmm_raw(prod.operand(a), prod.operand(b)));
  record(kBmm, {a, b}, {y}, [sa = Saved(a), sb = Saved(b), prod](const Tensors& g) {
    const Tensor x = prod.operand(sa.get()), z = prod.operand(sb.get()), dy = prod.operand(g[0]);
    return Tensors{prod.result(bmm_raw(dy, z.transpose(1, 2))), prod.result(bmm_raw(x.transpose(1, 2), dy))};
  });
  return y;
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  GNDET_CHECK(a.dim() >= 2 && b.dim() >= 2, "matmul: expected matrices, got shapes ", shape_str(a.shape()), " and ",
              shape_str(b.shape()));
  const int64_t K = a.size(-1);
  GNDET_CHECK(b.size(-2) == K, "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
              " do not multiply (", K, " vs ", b.size(-2), ")");
  if (b.dim() == 2) {
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    const int64_t rows = shape_numel(out_shape);
    out_shape.push_back(b.size(1));
    return bmm(a.reshape({1, rows, K}), b.unsqueeze(0)).reshape(out_shape);
  }
  GNDET_CHECK(a.dim() == b.dim() && std::equal(a.shape().begin(), a.shape().end() - 2, b.shape().begin()),
              "matmul: batch dimensions of ", shape_str(a.shape()), " and ", shape_str(b.shape()), " differ");
  Shape out_shape(a.shape().begin(), a.shape().end() - 1);
  out_shape.push_back(b.size(-1));
  const int64_t batch = shape_numel(Shape(a.shape().begin(), a.shape().end() - 2));
  return bmm(a.reshape({batch, a.size(-2), K}), b.reshape({batch, K, b.size(-1)})).reshape(out_shape);
}

}  // namespace gndet
