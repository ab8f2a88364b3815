// The CPU kernels of silu, registered in the slots of silu.h when the program loads. float32 and
// float64 (dispatch_floating), in OpenMP parallel when the tensor is large enough to pay for it.
#include <cmath>

#include "silu.h"
#include "tensor/cpu_loop.h"

namespace custom_op {
namespace {

using namespace gndet;

template <class T>
T sigmoid(T v) {
  return T(1) / (T(1) + std::exp(-v));
}

void silu_forward_cpu(const Tensor& y, const Tensor& x) {
  const int64_t n = x.numel();
  dispatch_floating(x.dtype(), "silu", [&]<class T>() {
    const T* in = x.data<T>();
    T* out = y.data<T>();
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelGrain)
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] * sigmoid(in[i]);
  });
}

void silu_backward_cpu(const Tensor& grad_x, const Tensor& grad_y, const Tensor& x) {
  const int64_t n = x.numel();
  dispatch_floating(x.dtype(), "silu_backward", [&]<class T>() {
    const T* in = x.data<T>();
    const T* gy = grad_y.data<T>();
    T* gx = grad_x.data<T>();
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const T s = sigmoid(in[i]);
      gx[i] = gy[i] * (s + in[i] * s * (T(1) - s));
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(silu_forward_kernel, CPU, silu_forward_cpu);
GNDET_REGISTER_KERNEL(silu_backward_kernel, CPU, silu_backward_cpu);

}  // namespace custom_op
