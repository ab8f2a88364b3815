#include "autograd/composite_check.h"

#include <omp.h>

#include <cmath>
#include <sstream>

#include "tensor/grad_mode.h"
#include "autograd/node.h"
#include "tensor/factory.h"
#include "tensor/random.h"

namespace gndet::autograd {

static std::vector<CompositeCase>& case_list() {
  static std::vector<CompositeCase> cases;  // function-local: safe from any static initialiser
  return cases;
}
const std::vector<CompositeCase>& composite_cases() { return case_list(); }
CompositeRegistrar::CompositeRegistrar(CompositeCase c) { case_list().push_back(std::move(c)); }

namespace {
// The cases are tiny (a few thousand values per tensor) and evaluated hundreds of times: OpenMP's
// thread wake-ups and barriers cost more than the work. Measured on the shared 2-core machine
// under load: roi_box_head_loss 3.1 s on one thread, 158 s on two.
class SingleThread {
 public:
  SingleThread() : previous_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~SingleThread() { omp_set_num_threads(previous_); }

 private:
  int previous_;
};
}  // namespace

GradcheckResult run_composite_case(const CompositeCase& c) {
  SingleThread one_thread;
  try {
    const CompositeProblem p = c.build(kFloat64, Device::cpu());
    Tensors leaves;
    for (const auto& [name, t] : p.leaves) leaves.push_back(t);
    GradcheckResult r = gradcheck_leaves(p.forward, leaves, c.options);
    // "leaf 3 element (1, 0)" -> "backbone.conv1.weight element (1, 0)"
    const std::string tag = "leaf ";
    if (r.worst.rfind(tag, 0) == 0) {
      const size_t space = r.worst.find(' ', tag.size());
      const size_t i = std::stoul(r.worst.substr(tag.size(), space - tag.size()));
      if (i < p.leaves.size()) r.worst = p.leaves[i].first + r.worst.substr(space);
    }
    return r;
  } catch (const Error& e) {
    GradcheckResult r;
    r.error = e.what();
    return r;
  }
}

namespace {

// The gradients of every leaf after one backward with output weights drawn from `seed`
// (the same numbers, in float64, for both runs).
std::vector<std::vector<double>> gradients(const CompositeProblem& p, uint64_t seed) {
  for (const auto& [name, t] : p.leaves) Tensor(t).set_grad(Tensor());
  const Tensors outs = p.forward();
  Generator gen(seed);
  Tensors r;
  for (const Tensor& y : outs) {
    GNDET_CHECK(y.requires_grad(), "compare_on_device: an output does not require grad");
    r.push_back(randn(y.shape(), gen, kFloat64).to(y.options()));
  }
  run_backward(outs, r, false);
  std::vector<std::vector<double>> g;
  for (const auto& [name, t] : p.leaves) {
    const Tensor gt = t.grad();
    g.push_back(gt.defined() ? gt.to(Device::cpu()).to_vector<double>()
                             : std::vector<double>(static_cast<size_t>(t.numel()), 0.0));
  }
  return g;
}

}  // namespace

DeviceComparison compare_on_device(const CompositeCase& c, Device device, double tolerance) {
  DeviceComparison cmp;
  try {
    const CompositeProblem ref = c.build(kFloat64, Device::cpu());
    const CompositeProblem dev = c.build(kFloat32, device);
    GNDET_CHECK(ref.leaves.size() == dev.leaves.size(), "compare_on_device: the case built different leaves");
    const auto g_ref = gradients(ref, c.options.seed);
    const auto g_dev = gradients(dev, c.options.seed);
    cmp.passed = true;
    for (size_t i = 0; i < g_ref.size(); ++i) {
      double scale = 0.0, diff = 0.0;
      for (size_t j = 0; j < g_ref[i].size(); ++j) {
        scale = std::max(scale, std::abs(g_ref[i][j]));
        diff = std::max(diff, std::abs(g_ref[i][j] - g_dev[i][j]));
      }
      // A leaf whose gradient is (numerically) zero compares absolutely.
      const double err = diff / std::max(scale, 1e-12);
      if (!(err <= tolerance)) cmp.passed = false;
      if (!(err <= cmp.max_normalized_error)) {
        cmp.max_normalized_error = err;
        std::ostringstream os;
        os << ref.leaves[i].first << ": max |diff| " << diff << ", max |grad| " << scale;
        cmp.worst = os.str();
      }
    }
  } catch (const Error& e) {
    cmp.passed = false;
    cmp.error = e.what();
  }
  return cmp;
}

}  // namespace gndet::autograd
