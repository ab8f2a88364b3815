// CPU kernel of the fused SGD update (ops/optim_step.h): a flat loop over contiguous values, in
// OpenMP parallel above the elementwise grain. Memory-bound: 3 reads and 2 writes per value.
#include "ops/kernel_util.h"
#include "ops/optim_step.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

void sgd_step_cpu(const Tensor& param, const Tensor& grad, const Tensor& momentum_buffer, const SgdStep& step) {
  dispatch_floating(param.dtype(), "sgd_step_", [&]<class T>() {
    T* __restrict p = out_ptr<T>(param);
    const T* __restrict g = in_ptr<T>(grad);
    T* __restrict buf = out_ptr<T>(momentum_buffer);  // nullptr without momentum: never touched
    const int64_t n = param.numel();
    const T wd = static_cast<T>(step.weight_decay), m = static_cast<T>(step.momentum), neg_lr = static_cast<T>(-step.lr);
    step.dispatch([&]<bool kDecay, bool kMomentum, bool kFirst, bool kNesterov>() {
#pragma omp parallel for simd schedule(static) if (n >= cpu::kParallelGrain)
      for (int64_t i = 0; i < n; ++i) {
        T unused{};
        SgdStep::apply<kDecay, kMomentum, kFirst, kNesterov>(p[i], g[i], kMomentum ? buf[i] : unused, wd, m, neg_lr);
      }
    });
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(sgd_step_kernel, CPU, sgd_step_cpu);

}  // namespace gndet
