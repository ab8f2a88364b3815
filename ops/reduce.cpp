#include "ops/reduce.h"

#include <algorithm>

#include "autograd/function.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(sum_rows_kernel, void(const Tensor&, const Tensor&, double));
GNDET_DEFINE_KERNEL(sum_cols_kernel, void(const Tensor&, const Tensor&, double));
GNDET_DEFINE_KERNEL(var_rows_kernel, void(const Tensor&, const Tensor&, double));
GNDET_DEFINE_KERNEL(extremum_rows_kernel, void(const Tensor&, const Tensor&, const Tensor&, bool));

using autograd::record;
using autograd::Saved;

namespace {

GNDET_OP(kSum, "sum");
GNDET_OP(kMean, "mean");
GNDET_OP(kVar, "var");
GNDET_OP(kMax, "max");
GNDET_OP(kMin, "min");

// Which dims are reduced, and the shapes that result.
struct Reduction {
  std::vector<bool> reduced;
  Shape keep_shape;  // reduced dims as 1
  Shape out_shape;   // reduced dims dropped unless keepdim
  int64_t M = 1;     // kept elements
  int64_t R = 1;     // reduced elements per output
};

Reduction plan_reduction(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, const char* op) {
  Reduction r;
  const int64_t nd = x.dim();
  r.reduced.assign(static_cast<size_t>(nd), dims.empty());
  for (int64_t d : dims) {
    const int64_t w = wrap_dim(d, nd, op);
    GNDET_CHECK(!r.reduced[w] || dims.empty(), op, ": dimension ", d, " listed twice");
    r.reduced[w] = true;
  }
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t s = x.shape()[d];
    if (r.reduced[d]) {
      r.R *= s;
      r.keep_shape.push_back(1);
      if (keepdim) r.out_shape.push_back(1);
    } else {
      r.M *= s;
      r.keep_shape.push_back(s);
      r.out_shape.push_back(s);
    }
  }
  return r;
}

// x arranged as a contiguous (M, R) matrix whose rows are the groups to reduce.
Tensor as_rows(const Tensor& x, const Reduction& r) {
  std::vector<int64_t> perm;
  for (int64_t d = 0; d < x.dim(); ++d) if (!r.reduced[d]) perm.push_back(d);
  for (int64_t d = 0; d < x.dim(); ++d) if (r.reduced[d]) perm.push_back(d);
  autograd::NoGradGuard no_grad;
  Tensor rows = x.permute(perm).contiguous();
  return make_view(rows, {r.M, r.R}, {r.R, 1}, rows.offset());
}

// True when the reduced dims all come before the kept ones in a contiguous x: then the sum runs
// down columns of an (R, M) matrix without any copy.
bool leading_reduction(const Tensor& x, const Reduction& r) {
  if (!x.is_contiguous()) return false;
  bool seen_kept = false;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.shape()[d] == 1) continue;
    if (!r.reduced[d]) seen_kept = true;
    else if (seen_kept) return false;
  }
  return true;
}

Tensor sum_raw(const Tensor& x_in, const Reduction& r, double scale) {
  const Tensor x = (x_in.dtype() == kBool || x_in.dtype() == kUInt8) ? x_in.detach().to(kInt64) : x_in;
  Tensor out = empty(r.out_shape, x.options());
  if (r.M == 0) return out;
  Tensor flat = make_view(out, {r.M}, {1}, 0);
  if (r.R == 0) {
    flat.fill_(0.0);
  } else if (leading_reduction(x, r)) {
    sum_cols_kernel(x.device(), flat, make_view(x, {r.R, r.M}, {r.M, 1}, x.offset()), scale);
  } else {
    sum_rows_kernel(x.device(), flat, as_rows(x, r), scale);
  }
  return out;
}

// Expands a gradient of the reduced shape back over x's shape (a view, no copy).
Tensor expand_grad(const Tensor& g, const Reduction& r, const Shape& x_shape) {
  return g.reshape(r.keep_shape).expand(x_shape);
}

std::vector<int64_t> all_dims(const Tensor& x) {
  std::vector<int64_t> d(static_cast<size_t>(x.dim()));
  for (int64_t i = 0; i < x.dim(); ++i) d[i] = i;
  return d;
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  const Reduction r = plan_reduction(x, dims, keepdim, "sum");
  Tensor y = sum_raw(x, r, 1.0);
  record(kSum, {x}, {y}, [r, shape = x.shape()](const Tensors& g) { return Tensors{expand_grad(g[0], r, shape)}; });
  return y;
}
Tensor sum(const Tensor& x) { return sum(x, all_dims(x)); }

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  GNDET_CHECK(is_floating(x.dtype()), "mean: expected a floating tensor, got ", dtype_name(x.dtype()));
  const Reduction r = plan_reduction(x, dims, keepdim, "mean");
  GNDET_CHECK(r.R > 0 || r.M == 0, "mean: reduction over an empty dimension of shape ", shape_str(x.shape()));
  Tensor y = sum_raw(x, r, 1.0 / static_cast<double>(r.R));
  record(kMean, {x}, {y}, [r, shape = x.shape()](const Tensors& g) {
    return Tensors{expand_grad(g[0] / static_cast<double>(r.R), r, shape)};
  });
  return y;
}
Tensor mean(const Tensor& x) { return mean(x, all_dims(x)); }

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased, bool keepdim) {
  GNDET_CHECK(is_floating(x.dtype()), "var: expected a floating tensor, got ", dtype_name(x.dtype()));
  const Reduction r = plan_reduction(x, dims, keepdim, "var");
  GNDET_CHECK(r.R > 0, "var: reduction over an empty dimension of shape ", shape_str(x.shape()));
  const double ddof = unbiased ? 1.0 : 0.0;
  Tensor y = empty(r.out_shape, x.options());
  if (r.M > 0) var_rows_kernel(x.device(), make_view(y, {r.M}, {1}, 0), as_rows(x, r), ddof);
  record(kVar, {x}, {y}, [r, sx = Saved(x), dims, ddof](const Tensors& g) {
    const Tensor v = sx.get();
    const Tensor centered = v - mean(v, dims, true);
    const Tensor scale = g[0].reshape(r.keep_shape) * (2.0 / (static_cast<double>(r.R) - ddof));
    return Tensors{centered * scale};
  });
  return y;
}
Tensor var(const Tensor& x) { return var(x, all_dims(x)); }

namespace {

ValuesIndices extremum(const Tensor& x, int64_t dim, bool keepdim, bool is_max) {
  const char* name = is_max ? "max" : "min";
  GNDET_CHECK(x.dtype() != kBool, name, ": bool tensors are not supported");
  const int64_t d = wrap_dim(dim, x.dim(), name);
  const Reduction r = plan_reduction(x, {d}, keepdim, name);
  GNDET_CHECK(r.R > 0, name, ": reduction over an empty dimension ", d, " of shape ", shape_str(x.shape()));
  ValuesIndices out{empty(r.out_shape, x.options()), empty(r.out_shape, TensorOptions(kInt64, x.device()))};
  if (r.M > 0) {
    extremum_rows_kernel(x.device(), make_view(out.values, {r.M}, {1}, 0), make_view(out.indices, {r.M}, {1}, 0),
                         as_rows(x, r), is_max);
  }
  record(is_max ? kMax : kMin, {x}, {out.values},
         [r, d, shape = x.shape(), idx = Saved(out.indices)](const Tensors& g) {
           const Tensor i = idx.get().reshape(r.keep_shape);
           return Tensors{scatter_add(zeros(shape, g[0].options()), d, i, g[0].reshape(r.keep_shape))};
         });
  return out;
}

}  // namespace

ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim) { return extremum(x, dim, keepdim, true); }
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim) { return extremum(x, dim, keepdim, false); }
Tensor max(const Tensor& x) { return extremum(x.reshape({-1}), 0, false, true).values; }
Tensor min(const Tensor& x) { return extremum(x.reshape({-1}), 0, false, false).values; }

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  autograd::NoGradGuard no_grad;
  return extremum(x, dim, keepdim, true).indices;
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  autograd::NoGradGuard no_grad;
  return extremum(x, dim, keepdim, false).indices;
}

Tensor sum_to(const Tensor& grad, const Shape& shape) {
  if (grad.shape() == shape) return grad;
  const int64_t lead = grad.dim() - static_cast<int64_t>(shape.size());
  GNDET_CHECK(lead >= 0, "sum_to: cannot reduce shape ", shape_str(grad.shape()), " to ", shape_str(shape));
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < grad.dim(); ++d) {
    if (d < lead) {
      dims.push_back(d);
    } else if (shape[d - lead] == 1 && grad.shape()[d] != 1) {
      dims.push_back(d);
    } else {
      GNDET_CHECK(shape[d - lead] == grad.shape()[d], "sum_to: cannot reduce shape ", shape_str(grad.shape()), " to ",
                  shape_str(shape));
    }
  }
  if (dims.empty()) return grad.reshape(shape);
  return sum(grad, dims, true).reshape(shape);
}

}  // namespace gndet
