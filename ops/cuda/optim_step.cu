// CUDA kernel of the fused SGD update (ops/optim_step.h): a grid-stride loop over contiguous
// values with the formula the CPU uses (SgdStep::apply).
#include "ops/kernel_util.h"
#include "ops/optim_step.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

template <bool kDecay, bool kMomentum, bool kFirst, bool kNesterov, class T>
__global__ void sgd_step_cu(T* __restrict__ p, const T* __restrict__ g, T* __restrict__ buf, int64_t n, T weight_decay,
                            T momentum, T neg_lr) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    T unused{};
    SgdStep::apply<kDecay, kMomentum, kFirst, kNesterov>(p[i], g[i], kMomentum ? buf[i] : unused, weight_decay,
                                                         momentum, neg_lr);
  }
}

void sgd_step_cuda(const Tensor& param, const Tensor& grad, const Tensor& buf, const SgdStep& step) {
  cuda::require_device("sgd_step_", param.device(), {&grad});
  if (buf.defined()) cuda::require_device("sgd_step_", param.device(), {&buf});
  const int64_t n = param.numel();
  if (n == 0) return;
  const int dev = param.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_floating(param.dtype(), "sgd_step_", [&]<class T>() {
    step.dispatch([&]<bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>() {
      sgd_step_cu<kDecay, kMomentum, kFirst, kNesterov, T>
          <<<cuda::grid_for(n, cuda::kThreads, dev), cuda::kThreads, 0, cuda::stream_for(dev)>>>(
              out_ptr<T>(param), in_ptr<T>(grad), out_ptr<T>(buf), n, static_cast<T>(step.weight_decay),
              static_cast<T>(step.momentum), static_cast<T>(-step.lr));
      GNDET_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(sgd_step_kernel, CUDA, sgd_step_cuda);

}  // namespace gndet
