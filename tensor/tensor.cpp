// Tensor metadata, raw access and in-place writes. Views and conversions live in ops/view.cpp,
// backward() in autograd/engine.cpp.
#include "tensor/tensor.h"

#include "tensor/grad_mode.h"
#include "tensor/factory.h"
#include "tensor/kernels.h"

namespace gndet {

namespace autograd {
namespace {
thread_local bool g_grad_enabled = true;
}
bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool enabled) { g_grad_enabled = enabled; }
}  // namespace autograd

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) {
    // Checked: a shape read from a file ([2^32, 2^32]) must not wrap around to a small count.
    GNDET_CHECK(s >= 0 && !__builtin_mul_overflow(n, s, &n), "shape ", shape_str(shape),
                " has a negative size or more elements than fit in 64 bits");
  }
  return n;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  const int64_t lo = ndim == 0 ? -1 : -ndim;
  const int64_t hi = ndim == 0 ? 0 : ndim - 1;
  GNDET_CHECK(dim >= lo && dim <= hi, op, ": dimension ", dim, " out of range for a ", ndim,
              "-d tensor (expected ", lo, "..", hi, ")");
  return dim < 0 ? dim + std::max<int64_t>(ndim, 1) : dim;
}

Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

int64_t Tensor::size(int64_t dim) const { return shape()[wrap_dim(dim, this->dim(), "size")]; }
int64_t Tensor::stride(int64_t dim) const { return strides()[wrap_dim(dim, this->dim(), "stride")]; }
int64_t Tensor::numel() const { return shape_numel(shape()); }

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = shape().size(); i-- > 0;) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(storage()->data()) + offset() * static_cast<int64_t>(element_size());
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  const Tensor host = cpu().contiguous();
  std::vector<T> out(static_cast<size_t>(host.numel()));
  dispatch_storage(host.dtype(), "to_vector", [&]<class S>() {
    const S* src = static_cast<const S*>(host.raw_data());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<T>(src[i]);
  });
  return out;
}

template <class T>
T Tensor::item() const {
  GNDET_CHECK(numel() == 1, "item: expected a tensor with one element, got shape ", shape_str(shape()));
  return to_vector<T>()[0];
}

#define GNDET_INSTANTIATE_ACCESS(T)                  \
  template std::vector<T> Tensor::to_vector<T>() const; \
  template T Tensor::item<T>() const;
GNDET_INSTANTIATE_ACCESS(float)
GNDET_INSTANTIATE_ACCESS(double)
GNDET_INSTANTIATE_ACCESS(int64_t)
GNDET_INSTANTIATE_ACCESS(int32_t)
GNDET_INSTANTIATE_ACCESS(uint8_t)
GNDET_INSTANTIATE_ACCESS(bool)
#undef GNDET_INSTANTIATE_ACCESS

static void check_inplace_allowed(const Tensor& t, const char* op) {
  GNDET_CHECK(!(t.requires_grad() && autograd::grad_enabled()), op,
              ": in-place write to a tensor that requires grad (shape ", shape_str(t.shape()),
              "); do it under autograd::NoGradGuard or on a detached tensor");
}

Tensor& Tensor::fill_(double value) {
  check_inplace_allowed(*this, "fill_");
  if (numel() > 0) fill_kernel(device(), *this, value);
  storage()->bump_version();
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  check_inplace_allowed(*this, "copy_");
  if (numel() > 0) {
    const Device d = src.is_cuda() ? src.device() : device();
    copy_kernel(d, *this, src);
  }
  storage()->bump_version();
  return *this;
}

void Tensor::set_data(const Tensor& src) {
  GNDET_CHECK(is_leaf(), "set_data: only leaf tensors can have their data replaced");
  GNDET_CHECK(!grad().defined() || grad().shape() == src.shape(), "set_data: new shape ", shape_str(src.shape()),
              " does not match the existing gradient's ", shape_str(grad().shape()));
  TensorImpl& me = impl();
  const TensorImpl& other = src.impl();
  me.storage = other.storage;
  me.sizes = other.sizes;
  me.strides = other.strides;
  me.offset = other.offset;
  me.dtype = other.dtype;
}

// ---- autograd state ----

static AutogradMeta& meta(const Tensor& t) {
  auto& m = t.impl().autograd;
  if (!m) m = std::make_unique<AutogradMeta>();
  return *m;
}

bool Tensor::requires_grad() const {
  const auto& m = impl().autograd;
  return m && m->requires_grad;
}

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  GNDET_CHECK(!requires_grad || is_floating(dtype()), "set_requires_grad: only floating tensors can require grad, got ",
              dtype_name(dtype()));
  GNDET_CHECK(is_leaf() || requires_grad, "set_requires_grad(false) on a non-leaf tensor; use detach()");
  meta(*this).requires_grad = requires_grad;
  return *this;
}

Tensor Tensor::grad() const {
  const auto& m = impl().autograd;
  return (m && m->grad) ? Tensor(m->grad) : Tensor();
}

void Tensor::set_grad(const Tensor& grad) {
  if (grad.defined()) {
    GNDET_CHECK(grad.shape() == shape(), "set_grad: gradient of shape ", shape_str(grad.shape()),
                " for a tensor of shape ", shape_str(shape()));
  }
  meta(*this).grad = grad.impl_ptr();
}

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const {
  static const std::shared_ptr<autograd::Node> none;
  const auto& m = impl().autograd;
  return m ? m->grad_fn : none;
}

uint32_t Tensor::output_nr() const {
  const auto& m = impl().autograd;
  return m ? m->output_nr : 0;
}

}  // namespace gndet
