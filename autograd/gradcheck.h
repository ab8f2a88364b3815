// gradcheck: compares an op's backward with central finite differences, in float64 on the CPU.
//
// With outputs y_k = f(inputs) and fixed random weights r_k ~ N(0, 1), it checks the gradient of
// the scalar L = sum_k <y_k, r_k>: analytically by one backward pass with output gradients r_k,
// numerically by (L(x + eps e_j) - L(x - eps e_j)) / (2 eps) for every element j of every input
// that requires grad. This tests J^T r for a random r (the "fast mode" of PyTorch's gradcheck):
// a wrong Jacobian entry escapes only if r happens to be orthogonal to the error, which has
// probability zero. An element passes when |analytic - numeric| <= atol + rtol * |numeric|.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet::autograd {

struct GradcheckOptions {
  double eps = 1e-6;   // perturbation; float64 leaves ~1e-10 relative error in the difference
  double atol = 1e-5;
  double rtol = 1e-3;
  uint64_t seed = 1234;  // for the projection weights r_k
  // Composite checks (whole layers, a detector's loss) have inputs too large to perturb element
  // by element in seconds: with max_elements_per_input = k > 0, only k elements of each larger
  // input are checked, drawn without replacement from `seed`. The result says how many were.
  int64_t max_elements_per_input = -1;
  // Also compare, for every input, the derivative along one random direction v ~ N(0, 1) through
  // all of its elements: <grad_i, v> against (L(x_i + eps v) - L(x_i - eps v)) / (2 eps). Two
  // evaluations per input, and every element of it contributes, sampled or not.
  bool directional = false;
};

struct GradcheckResult {
  bool passed = false;
  double max_abs_error = 0.0;  // max |analytic - numeric|
  double max_rel_error = 0.0;  // max |analytic - numeric| / max(|numeric|, atol / rtol)
  int64_t elements = 0;        // input elements checked
  int64_t total_elements = 0;  // elements of the inputs that require grad (more than `elements` when sampled)
  int64_t directions = 0;      // inputs checked along a random direction (GradcheckOptions::directional)
  std::string worst;           // where the worst element is and its two values
  std::string error;           // set when the check could not run (e.g. no backward)
  std::string skipped;         // set when the case needs something absent here (e.g. a GPU)
};

inline GradcheckResult gradcheck_skipped(std::string why) {
  GradcheckResult r;
  r.passed = true;
  r.skipped = std::move(why);
  return r;
}

using MultiFn = std::function<Tensors(const Tensors&)>;
using SingleFn = std::function<Tensor(const Tensors&)>;

// The device the checked function runs on (gndet gradcheck --device cuda; the CPU by default).
// The leaves, their perturbations and the finite differences stay float64 on the CPU; on another
// device, gradcheck / gradcheck_outputs hand `f` a copy of each leaf on that device (the copy is
// differentiable, so the gradient flows back to the CPU leaf) and the other inputs moved there, so
// the op's forward and backward run in float64 on the device's kernels. The check helpers of
// ops/checks make their tensors on this device. Not used by gradcheck_leaves (modules).
Device gradcheck_device();
class GradcheckDeviceGuard {
 public:
  explicit GradcheckDeviceGuard(Device device);
  ~GradcheckDeviceGuard();
  GradcheckDeviceGuard(const GradcheckDeviceGuard&) = delete;
  GradcheckDeviceGuard& operator=(const GradcheckDeviceGuard&) = delete;

 private:
  Device prev_;
};

// Inputs that require grad must be float64 tensors (on the CPU, or on gradcheck_device()); the
// others are passed through unchanged (index tensors, masks, constants), moved to the device.
GradcheckResult gradcheck(const SingleFn& f, const Tensors& inputs, const GradcheckOptions& opts = {});
GradcheckResult gradcheck_outputs(const MultiFn& f, const Tensors& inputs, const GradcheckOptions& opts = {});
// The same check on existing leaves, perturbed in place (module parameters): `f` computes its
// outputs from them. Each must be a contiguous float64 CPU tensor that requires grad; their .grad
// is overwritten. The leaves hold their original values again when this returns.
GradcheckResult gradcheck_leaves(const std::function<Tensors()>& f, const Tensors& leaves,
                                 const GradcheckOptions& opts = {});

// ---- the registry of gradcheck cases, run by `gndet gradcheck` and by the test suite ----
struct GradcheckCase {
  std::string op;    // the OpDef name it exercises
  std::string name;  // what is special about this case
  GradcheckResult (*run)();
};
const std::vector<GradcheckCase>& gradcheck_cases();
struct GradcheckRegistrar {
  GradcheckRegistrar(const char* op, const char* name, GradcheckResult (*run)());
};

}  // namespace gndet::autograd

#define GNDET_GRADCHECK_IMPL(op, name, id)                                                            \
  static ::gndet::autograd::GradcheckResult GNDET_CONCAT(gradcheck_case_, id)();                        \
  static const ::gndet::autograd::GradcheckRegistrar GNDET_CONCAT(gradcheck_reg_, id)(                  \
      op, name, &GNDET_CONCAT(gradcheck_case_, id));                                                    \
  static ::gndet::autograd::GradcheckResult GNDET_CONCAT(gradcheck_case_, id)()
// GNDET_GRADCHECK("relu", "3x4, no element near the kink") { ...; return gradcheck(f, inputs); }
#define GNDET_GRADCHECK(op, name) GNDET_GRADCHECK_IMPL(op, name, __COUNTER__)
