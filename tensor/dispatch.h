// Kernel<Signature>: one slot per device type, filled by the device's kernel file at load time.
//
//   // ops/relu.cpp (the op)          GNDET_DEFINE_KERNEL(relu_kernel, void(const Tensor&, Tensor&));
//   // ops/cpu/relu.cpp               GNDET_REGISTER_KERNEL(relu_kernel, CPU, relu_cpu);
//   // ops/cuda/relu.cu               GNDET_REGISTER_KERNEL(relu_kernel, CUDA, relu_cuda);
//   relu_kernel(x.device(), x, y);   // calls the kernel for x's device or throws naming it
//
// A Kernel is constant-initialised (constexpr constructor), so registrations running during
// dynamic initialisation of other files always find it ready.
#pragma once

#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/observer.h"

namespace gndet {

template <class Sig>
class Kernel;

template <class R, class... Args>
class Kernel<R(Args...)> {
 public:
  using Fn = R (*)(Args...);
  constexpr explicit Kernel(const char* name) : name_(name) {}

  bool set(DeviceType type, Fn fn) {
    fns_[static_cast<int>(type)] = fn;
    return true;
  }
  bool has(DeviceType type) const { return fns_[static_cast<int>(type)] != nullptr; }

  R operator()(Device device, Args... args) const {
    Fn fn = fns_[static_cast<int>(device.type)];
    if (fn == nullptr) [[unlikely]] {
      GNDET_FAIL(name_, ": no kernel for device ", device.str(),
                 device.is_cuda() ? " (gndet was built without CUDA)" : "");
    }
    if (ExecutionObserver* o = execution_observer()) [[unlikely]] {  // profiling
      o->kernel_begin(name_, device);
      struct End {
        ExecutionObserver* o;
        ~End() { o->kernel_end(); }
      } end{o};
      return fn(static_cast<Args>(args)...);
    }
    return fn(static_cast<Args>(args)...);
  }
  const char* name() const { return name_; }

 private:
  const char* name_;
  Fn fns_[kNumDeviceTypes] = {};
};

}  // namespace gndet

#define GNDET_DECLARE_KERNEL(name, ...) extern ::gndet::Kernel<__VA_ARGS__> name
#define GNDET_DEFINE_KERNEL(name, ...) constinit ::gndet::Kernel<__VA_ARGS__> name(#name)
#define GNDET_CONCAT_INNER(a, b) a##b
#define GNDET_CONCAT(a, b) GNDET_CONCAT_INNER(a, b)
#define GNDET_REGISTER_KERNEL(name, device, fn)                                       \
  [[maybe_unused]] static const bool GNDET_CONCAT(registered_, __COUNTER__) =          \
      (name).set(::gndet::DeviceType::device, (fn))
