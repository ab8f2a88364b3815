// Helpers that the CPU and CUDA kernel files share: typed pointers into a tensor, nullptr for an
// optional tensor that is undefined (a GroupNorm without weight, a loss without class weights).
// Unlike Tensor::data<T>() they do not check the dtype: kernels have dispatched on it already.
#pragma once

#include "tensor/tensor.h"

namespace gndet {

template <class T>
inline const T* in_ptr(const Tensor& t) {
  return t.defined() ? static_cast<const T*>(t.raw_data()) : nullptr;
}

template <class T>
inline T* out_ptr(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

}  // namespace gndet
