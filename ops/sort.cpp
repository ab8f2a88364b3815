#include "ops/sort.h"

#include "autograd/function.h"
#include "ops/index.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(sort_rows_kernel, void(const Tensor&, const Tensor&, const Tensor&, bool));
GNDET_DEFINE_KERNEL(topk_rows_kernel, void(const Tensor&, const Tensor&, const Tensor&, int64_t, bool));

using autograd::record;
using autograd::Saved;

namespace {

GNDET_OP(kSort, "sort");
GNDET_OP(kTopk, "topk");

// Runs a row kernel with `dim` moved last, then moves it back.
template <class RunRows>
ValuesIndices along_dim(const Tensor& x, int64_t d, int64_t out_len, RunRows run) {
  const Tensor moved = x.detach().transpose(d, -1).contiguous();
  const int64_t R = x.dim() == 0 ? 1 : x.shape()[d];
  const int64_t M = R == 0 ? 0 : moved.numel() / R;
  Shape moved_out = moved.shape();
  if (!moved_out.empty()) moved_out.back() = out_len;
  Tensor values = empty(moved_out, x.options());
  Tensor indices = empty(moved_out, TensorOptions(kInt64, x.device()));
  if (M > 0 && out_len > 0) {
    run(make_view(values, {M, out_len}, {out_len, 1}, 0), make_view(indices, {M, out_len}, {out_len, 1}, 0),
        make_view(moved, {M, R}, {R, 1}, moved.offset()));
  }
  return {values.transpose(d, -1).contiguous(), indices.transpose(d, -1).contiguous()};
}

void record_scatter_backward(const autograd::OpDef& op, const Tensor& x, const ValuesIndices& out, int64_t d) {
  record(op, {x}, {out.values}, [d, shape = x.shape(), idx = Saved(out.indices)](const Tensors& g) {
    return Tensors{scatter_add(zeros(shape, g[0].options()), d, idx.get(), g[0])};
  });
}

}  // namespace

ValuesIndices sort(const Tensor& x, int64_t dim, bool descending) {
  GNDET_CHECK(x.dtype() != kBool, "sort: bool tensors are not supported");
  const int64_t d = wrap_dim(dim, x.dim(), "sort");
  const int64_t R = x.dim() == 0 ? 1 : x.shape()[d];
  ValuesIndices out = along_dim(x, d, R, [&](const Tensor& v, const Tensor& i, const Tensor& in) {
    sort_rows_kernel(x.device(), v, i, in, descending);
  });
  record_scatter_backward(kSort, x, out, d);
  return out;
}

ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim, bool largest) {
  GNDET_CHECK(x.dtype() != kBool, "topk: bool tensors are not supported");
  const int64_t d = wrap_dim(dim, x.dim(), "topk");
  const int64_t R = x.dim() == 0 ? 1 : x.shape()[d];
  GNDET_CHECK(k >= 0 && k <= R, "topk: k = ", k, " but dimension ", d, " of ", shape_str(x.shape()), " has ", R,
              " elements");
  ValuesIndices out = along_dim(x, d, k, [&](const Tensor& v, const Tensor& i, const Tensor& in) {
    topk_rows_kernel(x.device(), v, i, in, k, largest);
  });
  record_scatter_backward(kTopk, x, out, d);
  return out;
}

Tensor argsort(const Tensor& x, int64_t dim, bool descending) {
  autograd::NoGradGuard no_grad;
  return sort(x, dim, descending).indices;
}

}  // namespace gndet
