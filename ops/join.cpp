// cat and split move data only through copy_ and views, so they need no kernels of their own.
#include "ops/join.h"

#include "autograd/function.h"
#include "tensor/factory.h"

namespace gndet {

using autograd::record;

namespace {
GNDET_OP(kCat, "cat");
GNDET_OP(kSplit, "split");
}  // namespace

Tensor cat(const Tensors& tensors, int64_t dim) {
  GNDET_CHECK(!tensors.empty(), "cat: expected at least one tensor");
  const Tensor& first = tensors[0];
  const int64_t d = wrap_dim(dim, first.dim(), "cat");
  GNDET_CHECK(first.dim() > 0, "cat: zero-dimensional tensors cannot be joined; use stack");
  Shape shape = first.shape();
  int64_t total = 0;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    GNDET_CHECK(t.dtype() == first.dtype() && t.device() == first.device(), "cat: tensor ", i, " is ",
                dtype_name(t.dtype()), " on ", t.device().str(), ", tensor 0 is ", dtype_name(first.dtype()), " on ",
                first.device().str());
    GNDET_CHECK(t.dim() == first.dim(), "cat: tensor ", i, " has shape ", shape_str(t.shape()), ", tensor 0 has ",
                shape_str(first.shape()));
    for (int64_t k = 0; k < t.dim(); ++k) {
      GNDET_CHECK(k == d || t.shape()[k] == shape[k], "cat: tensor ", i, " has shape ", shape_str(t.shape()),
                  ", expected ", shape_str(shape), " except in dimension ", d);
    }
    sizes.push_back(t.shape()[d]);
    total += t.shape()[d];
  }
  shape[d] = total;
  Tensor y = empty(shape, first.options());
  {
    autograd::NoGradGuard no_grad;
    int64_t at = 0;
    for (const Tensor& t : tensors) {
      if (t.numel() > 0) y.narrow(d, at, t.shape()[d]).copy_(t);
      at += t.shape()[d];
    }
  }
  record(kCat, tensors, {y}, [d, sizes](const Tensors& g) {
    Tensors grads;
    int64_t at = 0;
    for (int64_t s : sizes) {
      grads.push_back(g[0].narrow(d, at, s));
      at += s;
    }
    return grads;
  });
  return y;
}

Tensor stack(const Tensors& tensors, int64_t dim) {
  GNDET_CHECK(!tensors.empty(), "stack: expected at least one tensor");
  const int64_t d = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  Tensors expanded;
  for (size_t i = 0; i < tensors.size(); ++i) {
    GNDET_CHECK(tensors[i].shape() == tensors[0].shape(), "stack: tensor ", i, " has shape ",
                shape_str(tensors[i].shape()), ", tensor 0 has ", shape_str(tensors[0].shape()));
    expanded.push_back(tensors[i].unsqueeze(d));
  }
  return cat(expanded, d);
}

Tensors split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim) {
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    GNDET_CHECK(s >= 0, "split: negative size ", s);
    total += s;
  }
  GNDET_CHECK(total == x.shape()[d], "split: sizes sum to ", total, " but dimension ", d, " of ", shape_str(x.shape()),
              " has ", x.shape()[d]);
  Tensors pieces;
  int64_t at = 0;
  for (int64_t s : sizes) {
    Shape shape = x.shape();
    shape[d] = s;
    pieces.push_back(make_view(x, shape, x.strides(), x.offset() + at * x.strides()[d]));
    at += s;
  }
  // One node for all pieces: its backward joins their gradients (zeros where a piece got none).
  record(kSplit, {x}, pieces, [d, sizes, shape = x.shape()](const Tensors& g) {
    TensorOptions opts;
    for (const Tensor& t : g) {
      if (t.defined()) {  // the engine runs this only when at least one piece got a gradient
        opts = t.options();
        break;
      }
    }
    Tensors parts;
    for (size_t i = 0; i < g.size(); ++i) {
      Shape s = shape;
      s[d] = sizes[i];
      parts.push_back(g[i].defined() ? g[i] : zeros(s, opts));
    }
    return Tensors{cat(parts, d)};
  });
  return pieces;
}

Tensors split(const Tensor& x, int64_t size, int64_t dim) {
  GNDET_CHECK(size > 0, "split: piece size must be positive, got ", size);
  const int64_t d = wrap_dim(dim, x.dim(), "split");
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < x.shape()[d]; at += size) sizes.push_back(std::min(size, x.shape()[d] - at));
  return split(x, sizes, d);
}

}  // namespace gndet
