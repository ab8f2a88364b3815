#include "detection/checks/composite_util.h"

#include <cmath>

#include "tensor/grad_mode.h"
#include "nn/init.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"

namespace gndet::checks {

void generic_point(nn::Module& module, Generator& gen) {
  for (auto& [path, m] : module.named_modules()) {
    for (const auto& [name, t] : m->own_parameters()) {
      if (t.dim() >= 2) {
        const double fan_in = static_cast<double>(nn::init::fans(t).first);
        const double b = std::sqrt(3.0 / fan_in);
        nn::init::uniform(t, gen, -b, b);
      } else if (m->is_norm() && name == "weight") {
        nn::init::uniform(t, gen, 0.5, 1.5);
      } else {
        nn::init::uniform(t, gen, -0.2, 0.2);
      }
    }
  }
}

void add_parameters(CompositeProblem& p, nn::Module& module, DType dtype, Device device, const std::string& prefix) {
  module.to(dtype);
  module.to(device);
  for (auto& [name, t] : module.named_parameters()) {
    if (t.requires_grad()) p.leaves.emplace_back(prefix + name, t);
  }
}

Tensor add_input(CompositeProblem& p, const std::string& name, const Shape& shape, uint64_t seed, DType dtype,
                 Device device, double lo, double hi) {
  autograd::NoGradGuard no_grad;
  Generator g(seed);
  Tensor t = (rand(shape, g, kFloat64) * (hi - lo) + lo).to(dtype).to(device).contiguous().clone();
  t.set_requires_grad(true);
  p.leaves.emplace_back(name, t);
  return t;
}

}  // namespace gndet::checks
