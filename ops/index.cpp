#include "ops/index.h"

#include "autograd/function.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(gather_kernel, void(const Tensor&, const Tensor&, const Tensor&, IndexGeometry));
GNDET_DEFINE_KERNEL(scatter_add_kernel, void(const Tensor&, const Tensor&, const Tensor&, IndexGeometry));
GNDET_DEFINE_KERNEL(index_select_kernel, void(const Tensor&, const Tensor&, const Tensor&, IndexGeometry));
GNDET_DEFINE_KERNEL(index_add_kernel, void(const Tensor&, const Tensor&, const Tensor&, IndexGeometry));
GNDET_DEFINE_KERNEL(nonzero_kernel, Tensor(const Tensor&));

using autograd::record;
using autograd::Saved;

namespace {

GNDET_OP(kIndexSelect, "index_select");
GNDET_OP(kGather, "gather");
GNDET_OP(kScatterAdd, "scatter_add");
GNDET_OP(kMaskedFill, "masked_fill");

IndexGeometry geometry(const Shape& shape, int64_t dim, int64_t idx_dim) {
  IndexGeometry g;
  for (int64_t d = 0; d < dim; ++d) g.outer *= shape[d];
  for (size_t d = dim + 1; d < shape.size(); ++d) g.inner *= shape[d];
  g.src_dim = shape[dim];
  g.idx_dim = idx_dim;
  return g;
}

void check_index_tensor(const Tensor& x, const Tensor& idx, const char* op) {
  GNDET_CHECK(idx.dtype() == kInt64 || idx.dtype() == kInt32, op, ": index must be int64 or int32, got ",
              dtype_name(idx.dtype()));
  GNDET_CHECK(idx.device() == x.device(), op, ": index on ", idx.device().str(), ", tensor on ", x.device().str());
}

// gather / scatter_add: idx matches x in every dimension except `dim`.
void check_gather_shapes(const Tensor& x, int64_t dim, const Tensor& idx, const char* op) {
  GNDET_CHECK(idx.dim() == x.dim(), op, ": index of shape ", shape_str(idx.shape()), " must have as many dims as ",
              shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d) {
    GNDET_CHECK(d == dim || idx.shape()[d] == x.shape()[d], op, ": index shape ", shape_str(idx.shape()),
                " must match ", shape_str(x.shape()), " except in dimension ", dim);
  }
}

Tensor scatter_add_raw(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src) {
  Tensor out = x.detach().clone();
  if (idx.numel() > 0) {
    scatter_add_kernel(x.device(), out, idx.contiguous(), src.detach().contiguous(),
                       geometry(x.shape(), dim, idx.shape()[dim]));
  }
  return out;
}

}  // namespace

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx) {
  check_index_tensor(x, idx, "index_select");
  GNDET_CHECK(idx.dim() == 1, "index_select: index must be 1-D, got shape ", shape_str(idx.shape()));
  const int64_t d = wrap_dim(dim, x.dim(), "index_select");
  Shape shape = x.shape();
  shape[d] = idx.numel();
  Tensor y = empty(shape, x.options());
  if (y.numel() > 0) {
    index_select_kernel(x.device(), y, x.detach().contiguous(), idx.contiguous(), geometry(x.shape(), d, idx.numel()));
  }
  record(kIndexSelect, {x}, {y}, [d, shape = x.shape(), si = Saved(idx)](const Tensors& g) {
    return Tensors{index_add(zeros(shape, g[0].options()), d, si.get(), g[0])};
  });
  return y;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src) {
  check_index_tensor(x, idx, "index_add");
  GNDET_CHECK(idx.dim() == 1, "index_add: index must be 1-D, got shape ", shape_str(idx.shape()));
  GNDET_CHECK(src.dtype() == x.dtype() && src.device() == x.device(), "index_add: src must match x's dtype and device");
  const int64_t d = wrap_dim(dim, x.dim(), "index_add");
  Shape expect = x.shape();
  expect[d] = idx.numel();
  GNDET_CHECK(src.shape() == expect, "index_add: src of shape ", shape_str(src.shape()), ", expected ",
              shape_str(expect));
  Tensor out = x.detach().clone();
  if (src.numel() > 0) {
    index_add_kernel(x.device(), out, idx.contiguous(), src.detach().contiguous(), geometry(x.shape(), d, idx.numel()));
  }
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& idx) {
  check_index_tensor(x, idx, "gather");
  const int64_t d = wrap_dim(dim, x.dim(), "gather");
  check_gather_shapes(x, d, idx, "gather");
  Tensor y = empty(idx.shape(), x.options());
  if (y.numel() > 0) {
    gather_kernel(x.device(), y, x.detach().contiguous(), idx.contiguous(), geometry(x.shape(), d, idx.shape()[d]));
  }
  record(kGather, {x}, {y}, [d, shape = x.shape(), si = Saved(idx)](const Tensors& g) {
    return Tensors{scatter_add_raw(zeros(shape, g[0].options()), d, si.get(), g[0])};
  });
  return y;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src) {
  check_index_tensor(x, idx, "scatter_add");
  const int64_t d = wrap_dim(dim, x.dim(), "scatter_add");
  check_gather_shapes(x, d, idx, "scatter_add");
  GNDET_CHECK(src.shape() == idx.shape(), "scatter_add: src of shape ", shape_str(src.shape()),
              " must match the index shape ", shape_str(idx.shape()));
  GNDET_CHECK(src.dtype() == x.dtype() && src.device() == x.device(), "scatter_add: src is ", dtype_name(src.dtype()),
              " on ", src.device().str(), ", x is ", dtype_name(x.dtype()), " on ", x.device().str());
  Tensor y = scatter_add_raw(x, d, idx, src);
  record(kScatterAdd, {x, src}, {y}, [d, si = Saved(idx)](const Tensors& g) {
    return Tensors{g[0], gather(g[0], d, si.get())};
  });
  return y;
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  GNDET_CHECK(mask.dtype() == kBool, "masked_fill: mask must be bool, got ", dtype_name(mask.dtype()));
  GNDET_CHECK(mask.device() == x.device(), "masked_fill: mask on ", mask.device().str(), ", x on ", x.device().str());
  Tensor y;
  {
    autograd::NoGradGuard no_grad;
    y = where(mask, scalar_tensor(value, x.options()), x.detach());
  }
  GNDET_CHECK(y.shape() == x.shape(), "masked_fill: mask of shape ", shape_str(mask.shape()),
              " does not broadcast to ", shape_str(x.shape()));
  record(kMaskedFill, {x}, {y}, [sm = Saved(mask)](const Tensors& g) {
    return Tensors{where(sm.get(), zeros({}, g[0].options()), g[0])};
  });
  return y;
}

Tensor nonzero(const Tensor& x) {
  autograd::NoGradGuard no_grad;
  const Tensor mask = x.dtype() == kBool ? x.contiguous() : ne(x.detach(), 0.0);
  return nonzero_kernel(x.device(), mask);
}

Tensor nonzero_1d(const Tensor& mask) {
  GNDET_CHECK(mask.dim() == 1, "nonzero_1d: expected a 1-D mask, got shape ", shape_str(mask.shape()));
  return nonzero(mask).reshape({-1});
}

Tensor masked_select_rows(const Tensor& x, const Tensor& mask) {
  GNDET_CHECK(mask.dim() == 1 && x.dim() >= 1 && mask.size(0) == x.size(0), "masked_select_rows: mask of shape ",
              shape_str(mask.shape()), " for rows of ", shape_str(x.shape()));
  return index_select(x, 0, nonzero_1d(mask));
}

}  // namespace gndet
