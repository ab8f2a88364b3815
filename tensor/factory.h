// Tensor factories. All results are contiguous, own fresh storage and do not require grad.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace gndet {

Tensor empty(const Shape& shape, TensorOptions options = {});  // uninitialised
Tensor zeros(const Shape& shape, TensorOptions options = {});
Tensor ones(const Shape& shape, TensorOptions options = {});
Tensor full(const Shape& shape, double value, TensorOptions options = {});
Tensor scalar_tensor(double value, TensorOptions options = {});  // 0-dim
// [start, end) in steps of `step`; int64 unless options say otherwise.
Tensor arange(double start, double end, double step = 1.0, TensorOptions options = kInt64);
Tensor arange(int64_t end, TensorOptions options = kInt64);

Tensor empty_like(const Tensor& t);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);
Tensor full_like(const Tensor& t, double value);

// Copies `values` (row-major) into a tensor of `shape` with T's dtype on `device`.
template <class T>
Tensor from_data(const std::vector<T>& values, const Shape& shape, Device device = kCPU);
// 1-D convenience: from_data<float>({1, 2, 3}).
template <class T>
Tensor from_data(const std::vector<T>& values, Device device = kCPU) {
  return from_data<T>(values, Shape{static_cast<int64_t>(values.size())}, device);
}

}  // namespace gndet
