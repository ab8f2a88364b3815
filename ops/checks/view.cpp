// Gradcheck cases for views and conversions.
#include "ops/checks/check_util.h"
#include "tensor/backend.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("view", "(2,6) -> (3,4) -> (12)") {
  return gradcheck([](T in) { return in[0].view({3, 4}).reshape({-1}) * in[0].reshape({12}); }, {uniform({2, 6}, 70)});
}
GNDET_GRADCHECK("permute", "(2,3,4) -> (2,0,1)") {
  return gradcheck([](T in) { return in[0].permute({2, 0, 1}); }, {uniform({2, 3, 4}, 71)});
}
GNDET_GRADCHECK("slice", "step 2 of a middle dim, and narrow") {
  return gradcheck([](T in) { return in[0].slice(1, 1, 5, 2) + in[0].narrow(1, 0, 2); }, {uniform({2, 5}, 72)});
}
GNDET_GRADCHECK("select", "negative index") {
  return gradcheck([](T in) { return in[0].select(1, -1); }, {uniform({3, 4}, 73)});
}
GNDET_GRADCHECK("expand", "(3,1) -> (2,3,4)") {
  return gradcheck([](T in) { return in[0].expand({2, 3, 4}); }, {uniform({3, 1}, 74)});
}
GNDET_GRADCHECK("squeeze", "all size-1 dims") {
  return gradcheck([](T in) { return in[0].squeeze() * 2.0; }, {uniform({1, 3, 1}, 75)});
}
GNDET_GRADCHECK("unsqueeze", "new middle dim") {
  return gradcheck([](T in) { return in[0].unsqueeze(1); }, {uniform({3, 2}, 76)});
}
GNDET_GRADCHECK("clone", "of a transposed view (contiguous)") {
  return gradcheck([](T in) { return in[0].t().contiguous(); }, {uniform({3, 2}, 77)});
}
GNDET_GRADCHECK("to_dtype", "float64 -> float32 -> float64 round trip") {
  // The round trip is the identity up to float32 rounding (relative 6e-8). With the default
  // eps 1e-6 that rounding would be 6% of the difference quotient, so this case steps by 1e-2:
  // the function is linear, so a large step adds no truncation error, and the rounding error
  // becomes 6e-6 of the quotient, inside atol 1e-4.
  autograd::GradcheckOptions opts;
  opts.eps = 1e-2;
  opts.atol = 1e-4;
  return autograd::gradcheck([](T in) { return in[0].to(kFloat32).to(kFloat64) * 2.0; }, {uniform({3}, 78)}, opts);
}
GNDET_GRADCHECK("to_device", "cpu -> cuda -> cpu") {
  if (!cuda::is_available()) return autograd::gradcheck_skipped("no CUDA GPU present");
  return gradcheck([](T in) { return in[0].to(Device::cuda()).to(kCPU) * 3.0; }, {uniform({2, 3}, 79)});
}

}  // namespace gndet::checks
