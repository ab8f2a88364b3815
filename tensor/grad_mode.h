// Grad mode: whether ops record a graph. Thread-local, like PyTorch's. It lives in tensor/ (in the
// autograd namespace, where its users know it) because Tensor itself reads it (tensor.cpp).
#pragma once

namespace gndet::autograd {

bool grad_enabled();
void set_grad_enabled(bool enabled);

// Disables graph recording for its scope (inference, optimizer updates, in-place initialisation).
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

}  // namespace gndet::autograd
