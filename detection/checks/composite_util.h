// Helpers for the composite gradcheck cases (detection/checks/): modules moved to the case's
// dtype and device, their parameters as named leaves, inputs as leaves, and a generic base point.
#pragma once

#include <memory>
#include <string>

#include "autograd/composite_check.h"
#include "nn/module.h"
#include "tensor/random.h"

namespace gndet::checks {

using autograd::CompositeProblem;

// A generic point to check at: weights (2-D and more) U(-b, b) with b = sqrt(3 / fan_in) (unit
// gain), norm weights U(0.5, 1.5), every other 1-D parameter U(-0.2, 0.2). The modules' own
// inits (zero biases, N(0, 0.01) heads, zero-initialised last norms of residual blocks) would
// make many gradients exactly or nearly zero, and a check of zeros against zeros proves nothing.
void generic_point(nn::Module& module, Generator& gen);

// Moves `module` to dtype and device and appends its parameters as leaves named prefix + name.
void add_parameters(CompositeProblem& p, nn::Module& module, DType dtype, Device device,
                    const std::string& prefix = "");

// U(lo, hi) drawn in float64 from `seed`, converted to dtype and device: a leaf that requires
// grad, appended to p.leaves as `name`. The same seed gives the same values on every device.
Tensor add_input(CompositeProblem& p, const std::string& name, const Shape& shape, uint64_t seed, DType dtype,
                 Device device, double lo = -1.0, double hi = 1.0);

}  // namespace gndet::checks
