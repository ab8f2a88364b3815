// Tensor: a shared handle to (storage, shape, strides, offset, dtype) plus autograd state.
//
// Copying a Tensor copies the handle, not the data: `Tensor b = a;` aliases. Views (reshape,
// permute, narrow, ...) share storage with their base, so a write through a view is seen by the
// base. Shapes are row-major; strides and offsets count elements, not bytes.
//
// The view and conversion methods are differentiable operations and are defined with the other
// ops in ops/view.cpp; the rest of this class is plain metadata and raw memory access.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <vector>

#include "tensor/device.h"
#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/storage.h"

namespace gndet {

namespace autograd {
class Node;
}

class Tensor;
using Tensors = std::vector<Tensor>;

struct TensorOptions {
  DType dtype = kFloat32;
  Device device = kCPU;
  TensorOptions() = default;
  TensorOptions(DType d) : dtype(d) {}                          // NOLINT: implicit on purpose
  TensorOptions(Device dev) : device(dev) {}                    // NOLINT
  TensorOptions(DType d, Device dev) : dtype(d), device(dev) {}
};

struct TensorImpl;

struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;  // the op that produced this tensor; null for leaves
  uint32_t output_nr = 0;                   // which output of grad_fn this is
  std::shared_ptr<autograd::Node> grad_accumulator;  // leaves only, made on first use
  std::shared_ptr<TensorImpl> grad;                  // accumulated gradient (leaves)
  // Run after each backward's accumulation into grad (autograd::add_post_accumulate_hook).
  std::vector<std::pair<uint64_t, std::function<void()>>> post_accumulate_hooks;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape sizes;
  Shape strides;
  int64_t offset = 0;
  DType dtype = kFloat32;
  std::unique_ptr<AutogradMeta> autograd;  // null until autograd needs it
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- metadata ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().sizes; }
  const Shape& strides() const { return impl().strides; }
  int64_t size(int64_t dim) const;    // negative dims count from the end
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return static_cast<int64_t>(impl().sizes.size()); }
  int64_t numel() const;
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  TensorOptions options() const { return {dtype(), device()}; }
  bool is_cuda() const { return device().is_cuda(); }
  bool is_contiguous() const;
  size_t element_size() const { return itemsize(dtype()); }
  const std::shared_ptr<Storage>& storage() const { return impl().storage; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }
  bool shares_storage(const Tensor& other) const { return storage() == other.storage(); }
  uint64_t version() const { return storage()->version(); }

  // ---- raw memory ----
  // Pointer to the first element (offset applied). Checks the dtype, not the device.
  template <class T>
  T* data() const {
    GNDET_CHECK(dtype_of<T>() == dtype(), "Tensor::data: tensor is ", dtype_name(dtype()),
                ", asked for ", dtype_name(dtype_of<T>()));
    return static_cast<T*>(raw_data());
  }
  void* raw_data() const;

  // The single element as T (copied to the host; converts from any dtype).
  template <class T>
  T item() const;
  // All elements in row-major order (copied to the host; converts from any dtype).
  template <class T>
  std::vector<T> to_vector() const;

  // ---- views: share storage; differentiable (ops/view.cpp) ----
  Tensor view(const Shape& shape) const;     // no copy; throws if strides do not allow it
  Tensor reshape(const Shape& shape) const;  // a view when possible, else a copy; -1 infers one size
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor t() const;  // 2-D transpose
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;  // python-like ends
  Tensor select(int64_t dim, int64_t index) const;  // removes `dim`
  Tensor expand(const Shape& shape) const;          // -1 keeps a size; new leading dims allowed
  Tensor expand_as(const Tensor& other) const { return expand(other.shape()); }
  Tensor squeeze(int64_t dim) const;
  Tensor squeeze() const;
  Tensor unsqueeze(int64_t dim) const;

  // ---- copies and conversions (differentiable) ----
  Tensor contiguous() const;  // itself when already contiguous
  Tensor clone() const;
  Tensor to(DType dtype) const;     // itself when the dtype already matches
  Tensor to(Device device) const;   // itself when already there
  Tensor to(TensorOptions options) const;
  Tensor cpu() const { return to(kCPU); }
  Tensor detach() const;  // same storage, no autograd history

  // ---- in-place writes (raw; refused on tensors that require grad while grad mode is on) ----
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }
  Tensor& copy_(const Tensor& src);  // src broadcast to this shape, converted to this dtype
  // Makes this handle (and every copy of it) refer to src's data, keeping its own autograd
  // identity: how a module moves its parameters to another device without invalidating them.
  // Only for leaves, outside any graph.
  void set_data(const Tensor& src);

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool requires_grad = true);
  Tensor grad() const;  // undefined until a backward reached this leaf
  void set_grad(const Tensor& grad);
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  uint32_t output_nr() const;
  bool is_leaf() const { return grad_fn() == nullptr; }
  // Backpropagates from this tensor. `grad` defaults to 1 for a single-element tensor.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;

  TensorImpl& impl() const {
    GNDET_CHECK(impl_ != nullptr, "use of an undefined Tensor");
    return *impl_;
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// ---- construction without autograd (used by ops) ----
Shape contiguous_strides(const Shape& shape);
int64_t shape_numel(const Shape& shape);
// A view of `base`'s storage with the given geometry; no autograd history.
Tensor make_view(const Tensor& base, Shape sizes, Shape strides, int64_t offset);
// Normalises a possibly negative dim for a tensor of `ndim` dims, or throws naming `op`.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

std::ostream& operator<<(std::ostream& os, const Tensor& t);

}  // namespace gndet
