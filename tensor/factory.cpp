#include "tensor/factory.h"

#include <cmath>

namespace gndet {

Tensor empty(const Shape& shape, TensorOptions options) {
  for (int64_t s : shape) GNDET_CHECK(s >= 0, "empty: negative size in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * itemsize(options.dtype),
                                            options.device);
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = options.dtype;
  return Tensor(std::move(impl));
}

Tensor full(const Shape& shape, double value, TensorOptions options) {
  Tensor t = empty(shape, options);
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, TensorOptions options) { return full(shape, 0.0, options); }
Tensor ones(const Shape& shape, TensorOptions options) { return full(shape, 1.0, options); }
Tensor scalar_tensor(double value, TensorOptions options) { return full({}, value, options); }

Tensor arange(double start, double end, double step, TensorOptions options) {
  GNDET_CHECK(step != 0.0, "arange: step must be non-zero");
  const double span = (end - start) / step;
  const int64_t n = span > 0 ? static_cast<int64_t>(std::ceil(span)) : 0;
  Tensor host = empty({n}, options.dtype);
  dispatch_numeric(options.dtype, "arange", [&]<class T>() {
    T* p = host.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return host.to(options.device);
}
Tensor arange(int64_t end, TensorOptions options) { return arange(0.0, static_cast<double>(end), 1.0, options); }

Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.options()); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.options()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.options()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.options()); }

template <class T>
Tensor from_data(const std::vector<T>& values, const Shape& shape, Device device) {
  GNDET_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_data: ", values.size(),
              " values for shape ", shape_str(shape), " (", shape_numel(shape), " elements)");
  Tensor host = empty(shape, dtype_of<T>());
  T* p = host.data<T>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return host.to(device);
}

template Tensor from_data<float>(const std::vector<float>&, const Shape&, Device);
template Tensor from_data<double>(const std::vector<double>&, const Shape&, Device);
template Tensor from_data<int64_t>(const std::vector<int64_t>&, const Shape&, Device);
template Tensor from_data<int32_t>(const std::vector<int32_t>&, const Shape&, Device);
template Tensor from_data<uint8_t>(const std::vector<uint8_t>&, const Shape&, Device);
template <>
Tensor from_data<bool>(const std::vector<bool>& values, const Shape& shape, Device device) {
  GNDET_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_data: ", values.size(),
              " values for shape ", shape_str(shape));
  Tensor host = empty(shape, kBool);
  bool* p = host.data<bool>();
  for (size_t i = 0; i < values.size(); ++i) p[i] = values[i];
  return host.to(device);
}

}  // namespace gndet
