// Composite gradient checks: whole layers and losses (a GN bottleneck, an FPN, a detector's
// two-stage loss) checked like single ops, in float64 on the CPU, by `gndet gradcheck --modules`
// and the test suite ("[gradcheck_modules]"). The cases live with the code they exercise
// (detection/checks/); this file holds their registry and the two ways to run one:
//
//   run_composite_case:  gradcheck_leaves on the case's leaves (parameters and differentiable
//                        inputs), sampling elements of large tensors and adding one random
//                        direction over all of them (see GradcheckOptions)
//   compare_on_device:   the same case built in float32 on a GPU; its gradients are compared with
//                        the CPU float64 ones by normalised error
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/gradcheck.h"

namespace gndet::autograd {

// One case, built for a dtype and device: named leaves and a forward computing outputs from them.
struct CompositeProblem {
  std::vector<std::pair<std::string, Tensor>> leaves;  // "conv.weight", "input", ...
  std::function<Tensors()> forward;
  std::shared_ptr<void> owner;  // keeps the modules (and configs) the forward uses alive
};

struct CompositeCase {
  std::string name;         // what `gndet gradcheck --modules NAME` selects
  std::string description;  // shapes and what is covered
  std::string note;         // how the case is made smooth or sampled, printed under its row
  GradcheckOptions options;
  CompositeProblem (*build)(DType dtype, Device device);
};

const std::vector<CompositeCase>& composite_cases();
struct CompositeRegistrar {
  explicit CompositeRegistrar(CompositeCase c);
};

GradcheckResult run_composite_case(const CompositeCase& c);

struct DeviceComparison {
  bool passed = false;
  double max_normalized_error = 0.0;  // max over leaves of max|g_dev - g_cpu| / max|g_cpu|
  std::string worst;                  // the leaf with that error
  std::string error;                  // set when the comparison could not run
};
// Gradients of the case in float32 on `device` against float64 on the CPU, with the same output
// weights r. Passes when every leaf's normalised error is at most `tolerance`.
DeviceComparison compare_on_device(const CompositeCase& c, Device device, double tolerance);

}  // namespace gndet::autograd
