// The differentiable views and conversions declared as Tensor methods in tensor/tensor.h.
// A view shares storage with its input; its backward maps the gradient back to the input's shape.
#include <numeric>
#include <optional>

#include "autograd/function.h"
#include "ops/reduce.h"
#include "tensor/factory.h"

namespace gndet {

using autograd::record;

namespace {

GNDET_OP(kView, "view");
GNDET_OP(kPermute, "permute");
GNDET_OP(kSlice, "slice");
GNDET_OP(kSelect, "select");
GNDET_OP(kExpand, "expand");
GNDET_OP(kSqueeze, "squeeze");
GNDET_OP(kUnsqueeze, "unsqueeze");
GNDET_OP(kClone, "clone");
GNDET_OP(kToDtype, "to_dtype");
GNDET_OP(kToDevice, "to_device");

// Replaces a single -1 by the size that keeps numel.
Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape out = shape;
  int64_t known = 1, infer_at = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      GNDET_CHECK(infer_at < 0, op, ": only one dimension can be -1 in ", shape_str(shape));
      infer_at = static_cast<int64_t>(i);
    } else {
      GNDET_CHECK(shape[i] >= 0, op, ": invalid size in ", shape_str(shape));
      known *= shape[i];
    }
  }
  if (infer_at >= 0) {
    GNDET_CHECK(known > 0 && numel % known == 0, op, ": cannot infer -1 in ", shape_str(shape), " for ", numel,
                " elements");
    out[infer_at] = numel / known;
  } else {
    GNDET_CHECK(known == numel, op, ": shape ", shape_str(shape), " has ", known, " elements, the tensor has ", numel);
  }
  return out;
}

// Strides that let a tensor of (old_shape, old_strides) be seen as new_shape without a copy, if
// any exist: each run of dimensions that is contiguous in memory may be re-split freely.
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides, const Shape& new_shape) {
  if (shape_numel(old_shape) == 0 || old_shape.empty()) return contiguous_strides(new_shape);
  Shape new_strides(new_shape.size());
  int64_t view_d = static_cast<int64_t>(new_shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    const bool chunk_ends = d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
      new_strides[view_d] = view_numel * chunk_base_stride;
      view_numel *= new_shape[view_d];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (d > 0) {
      chunk_base_stride = old_strides[d - 1];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

// A view whose gradient is the incoming one reshaped back to the input's shape.
Tensor reshaping_view(const autograd::OpDef& op, const Tensor& x, Shape sizes, Shape strides) {
  Tensor y = make_view(x, std::move(sizes), std::move(strides), x.offset());
  record(op, {x}, {y}, [shape = x.shape()](const Tensors& g) { return Tensors{g[0].reshape(shape)}; });
  return y;
}

// Backward of slice/select: the gradient placed into zeros of the input's shape.
Tensor embed(const Tensor& g, const Shape& shape, const std::function<Tensor(const Tensor&)>& same_view) {
  Tensor z = zeros(shape, g.options());
  same_view(z).copy_(g);
  return z;
}

}  // namespace

Tensor Tensor::view(const Shape& shape) const {
  const Shape s = infer_shape(shape, numel(), "view");
  const std::optional<Shape> st = view_strides(this->shape(), strides(), s);
  GNDET_CHECK(st.has_value(), "view: shape ", shape_str(s), " is not compatible with the strides of a ",
              shape_str(this->shape()), " tensor; use reshape() (which copies)");
  return reshaping_view(kView, *this, s, *st);
}

Tensor Tensor::reshape(const Shape& shape) const {
  const Shape s = infer_shape(shape, numel(), "reshape");
  if (s == this->shape()) return *this;
  if (view_strides(this->shape(), strides(), s).has_value()) return view(s);
  return contiguous().view(s);
}

Tensor Tensor::flatten(int64_t start_dim, int64_t end_dim) const {
  if (dim() == 0) return reshape({1});
  const int64_t s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  GNDET_CHECK(s <= e, "flatten: start_dim ", start_dim, " after end_dim ", end_dim);
  Shape out(shape().begin(), shape().begin() + s);
  int64_t n = 1;
  for (int64_t d = s; d <= e; ++d) n *= shape()[d];
  out.push_back(n);
  out.insert(out.end(), shape().begin() + e + 1, shape().end());
  return reshape(out);
}

Tensor Tensor::permute(const std::vector<int64_t>& dims) const {
  const int64_t n = dim();
  GNDET_CHECK(static_cast<int64_t>(dims.size()) == n, "permute: ", dims.size(), " dims given for a ", n, "-d tensor");
  Shape sizes(n), st(n);
  std::vector<int64_t> inverse(n, -1);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t d = wrap_dim(dims[i], n, "permute");
    GNDET_CHECK(inverse[d] < 0, "permute: dimension ", d, " repeated");
    inverse[d] = i;
    sizes[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor y = make_view(*this, sizes, st, offset());
  record(kPermute, {*this}, {y}, [inverse](const Tensors& g) { return Tensors{g[0].permute(inverse)}; });
  return y;
}

Tensor Tensor::transpose(int64_t dim0, int64_t dim1) const {
  if (dim() < 2) return *this;
  const int64_t a = wrap_dim(dim0, dim(), "transpose"), b = wrap_dim(dim1, dim(), "transpose");
  if (a == b) return *this;
  std::vector<int64_t> perm(dim());
  std::iota(perm.begin(), perm.end(), int64_t{0});
  std::swap(perm[a], perm[b]);
  return permute(perm);
}

Tensor Tensor::t() const {
  GNDET_CHECK(dim() == 2, "t: expected a 2-D tensor, got shape ", shape_str(shape()));
  return transpose(0, 1);
}

Tensor Tensor::slice(int64_t dim, int64_t start, int64_t end, int64_t step) const {
  const int64_t d = wrap_dim(dim, this->dim(), "slice");
  GNDET_CHECK(step > 0, "slice: step must be positive, got ", step);
  const int64_t n = shape()[d];
  auto clampi = [n](int64_t i) { return std::clamp(i < 0 ? i + n : i, int64_t{0}, n); };
  const int64_t s = clampi(start), e = std::max(clampi(end), s);
  Shape sizes = shape(), st = strides();
  sizes[d] = (e - s + step - 1) / step;
  st[d] *= step;
  Tensor y = make_view(*this, sizes, st, offset() + s * strides()[d]);
  record(kSlice, {*this}, {y}, [shape = shape(), d, s, e, step](const Tensors& g) {
    return Tensors{embed(g[0], shape, [&](const Tensor& z) { return z.slice(d, s, e, step); })};
  });
  return y;
}

Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  const int64_t d = wrap_dim(dim, this->dim(), "narrow");
  GNDET_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow: [", start, ", ", start + length,
              ") is outside dimension ", d, " of size ", shape()[d], " (shape ", shape_str(shape()), ")");
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t dim, int64_t index) const {
  const int64_t d = wrap_dim(dim, this->dim(), "select");
  const int64_t n = shape()[d];
  GNDET_CHECK(index >= -n && index < n, "select: index ", index, " out of range for dimension ", d, " of size ", n);
  const int64_t i = index < 0 ? index + n : index;
  Shape sizes = shape(), st = strides();
  sizes.erase(sizes.begin() + d);
  st.erase(st.begin() + d);
  Tensor y = make_view(*this, sizes, st, offset() + i * strides()[d]);
  record(kSelect, {*this}, {y}, [shape = shape(), d, i](const Tensors& g) {
    return Tensors{embed(g[0], shape, [&](const Tensor& z) { return z.select(d, i); })};
  });
  return y;
}

Tensor Tensor::expand(const Shape& shape) const {
  const int64_t n = static_cast<int64_t>(shape.size());
  GNDET_CHECK(n >= dim(), "expand: cannot expand ", shape_str(this->shape()), " to fewer dimensions ", shape_str(shape));
  Shape sizes(n), st(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t src = i - (n - dim());
    if (src < 0) {
      GNDET_CHECK(shape[i] >= 0, "expand: new leading dimension ", i, " needs an explicit size in ", shape_str(shape));
      sizes[i] = shape[i];
      st[i] = 0;
      continue;
    }
    const int64_t have = this->shape()[src];
    const int64_t want = shape[i] == -1 ? have : shape[i];
    GNDET_CHECK(want == have || have == 1, "expand: cannot expand ", shape_str(this->shape()), " to ",
                shape_str(shape), " (dimension ", i, ": ", have, " -> ", want, ")");
    sizes[i] = want;
    st[i] = (want == have) ? strides()[src] : 0;
  }
  if (sizes == this->shape()) return *this;
  Tensor y = make_view(*this, sizes, st, offset());
  record(kExpand, {*this}, {y}, [shape = this->shape()](const Tensors& g) { return Tensors{sum_to(g[0], shape)}; });
  return y;
}

Tensor Tensor::squeeze(int64_t dim) const {
  if (this->dim() == 0) return *this;
  const int64_t d = wrap_dim(dim, this->dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape sizes = shape(), st = strides();
  sizes.erase(sizes.begin() + d);
  st.erase(st.begin() + d);
  return reshaping_view(kSqueeze, *this, sizes, st);
}

Tensor Tensor::squeeze() const {
  Shape sizes, st;
  for (int64_t d = 0; d < dim(); ++d) {
    if (shape()[d] == 1) continue;
    sizes.push_back(shape()[d]);
    st.push_back(strides()[d]);
  }
  if (sizes.size() == shape().size()) return *this;
  return reshaping_view(kSqueeze, *this, sizes, st);
}

Tensor Tensor::unsqueeze(int64_t dim) const {
  const int64_t d = wrap_dim(dim, this->dim() + 1, "unsqueeze");
  Shape sizes = shape(), st = strides();
  const int64_t stride = d < this->dim() ? strides()[d] * shape()[d] : 1;
  sizes.insert(sizes.begin() + d, 1);
  st.insert(st.begin() + d, stride);
  return reshaping_view(kUnsqueeze, *this, sizes, st);
}

// ---- copies and conversions ----

Tensor Tensor::clone() const {
  Tensor y = empty(shape(), options());
  {
    autograd::NoGradGuard no_grad;
    y.copy_(*this);
  }
  record(kClone, {*this}, {y}, [](const Tensors& g) { return Tensors{g[0]}; });
  return y;
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor y = empty(shape(), TensorOptions(dtype, device()));
  {
    autograd::NoGradGuard no_grad;
    y.copy_(*this);
  }
  if (is_floating(dtype)) {
    record(kToDtype, {*this}, {y}, [from = this->dtype()](const Tensors& g) { return Tensors{g[0].to(from)}; });
  }
  return y;
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  Tensor y = empty(shape(), TensorOptions(dtype(), device));
  {
    autograd::NoGradGuard no_grad;
    y.copy_(*this);
  }
  record(kToDevice, {*this}, {y}, [from = this->device()](const Tensors& g) { return Tensors{g[0].to(from)}; });
  return y;
}

Tensor Tensor::to(TensorOptions options) const { return to(options.dtype).to(options.device); }

Tensor Tensor::detach() const { return make_view(*this, shape(), strides(), offset()); }

}  // namespace gndet
