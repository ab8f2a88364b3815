// The example's program: four checks of the silu op, one line each; exits 1 if any fails.
//   1. silu and its gradcheck case are in the library's registries, beside gndet's own ops.
//   2. silu's gradcheck cases pass, run from the registry as `gndet gradcheck` runs its own.
//   3. gradcheck rejects a deliberately wrong backward, so a pass in 2 means something.
//   4. silu inside an nn::Module: a tiny classifier trains, its loss falls over 20 SGD steps.
#include <cmath>
#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "gndet_config.h"
#include "nn/layers.h"
#include "nn/norm_layers.h"
#include "nn/optim.h"
#include "ops/checks/check_util.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "silu.h"
#include "tensor/factory.h"
#include "tensor/random.h"

using namespace gndet;
using custom_op::silu;

namespace {

bool report(bool ok, const std::string& what) {
  std::printf("custom_op: %-6s %s\n", ok ? "ok" : "FAILED", what.c_str());
  return ok;
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

// ---- 1 ----
bool silu_is_registered() {
  bool op_found = false;
  for (const autograd::OpDef* op : autograd::registered_ops()) op_found |= std::string(op->name) == "silu";
  size_t cases = 0;
  for (const autograd::GradcheckCase& c : autograd::gradcheck_cases()) cases += c.op == "silu";
  const std::string ops = std::to_string(autograd::registered_ops().size());
  const std::string all_cases = std::to_string(autograd::gradcheck_cases().size());
  return report(op_found && cases > 0, "op 'silu' registered beside gndet's own (" + ops + " ops in all), with " +
                                           std::to_string(cases) + " of the registry's " + all_cases + " gradcheck cases");
}

// ---- 2 ----
bool silu_cases_pass() {
  bool all = true;
  for (const autograd::GradcheckCase& c : autograd::gradcheck_cases()) {
    if (c.op != "silu") continue;
    const autograd::GradcheckResult r = c.run();
    const bool ok = r.passed && r.skipped.empty() && r.elements > 0;
    all &= report(ok, "gradcheck silu [" + c.name + "]: " + std::to_string(r.elements) +
                          " elements, max abs error " + sci(r.max_abs_error) +
                          (ok ? "" : "; " + r.skipped + r.error + " worst " + r.worst));
  }
  return all;
}

// ---- 3 ----
// silu's forward kernel with a classic mistake in the backward: the product rule's second term
// is forgotten, d/dx (x * s) taken as s. A composite backward, built from gndet's own ops.
GNDET_OP(kSiluWrongBackward, "silu_wrong_backward");

Tensor silu_wrong_backward(const Tensor& x) {
  const Tensor xc = x.detach().contiguous();
  Tensor y = empty(x.shape(), x.options());
  custom_op::silu_forward_kernel(x.device(), y, xc);
  autograd::record(kSiluWrongBackward, {x}, {y}, [sx = autograd::Saved(xc)](const Tensors& g) {
    return Tensors{g[0] * sigmoid(sx.get())};
  });
  return y;
}

bool wrong_backward_fails() {
  const autograd::GradcheckResult r = autograd::gradcheck(
      [](const Tensors& in) { return silu_wrong_backward(in[0]); }, {checks::uniform({2, 3, 4}, 7001, -6.0, 6.0)});
  return report(!r.passed && r.error.empty(),
                "gradcheck rejects a wrong backward (sigmoid(x) alone): max abs error " + sci(r.max_abs_error));
}

// ---- 4 ----
// images (N, 3, 8, 8) -> Conv2d 3x3 -> GroupNorm -> silu -> flatten -> Linear -> logits (N, 4)
class TinyClassifier : public nn::Module {
 public:
  explicit TinyClassifier(Generator& gen) {
    const nn::Conv2dOptions conv{.in_channels = 3, .out_channels = 8, .kernel = {3, 3}, .padding = {1, 1}};
    conv_ = register_module("conv", std::make_shared<nn::Conv2d>(conv, gen));
    gn_ = register_module("gn", std::make_shared<nn::GroupNorm>(2, 8));
    fc_ = register_module("fc", std::make_shared<nn::Linear>(8 * 8 * 8, 4, true, gen));
  }
  Tensor forward(const Tensor& images) {
    const Tensor features = silu(gn_->forward(conv_->forward(images)));
    return fc_->forward(features.flatten(1));
  }

 private:
  std::shared_ptr<nn::Conv2d> conv_;
  std::shared_ptr<nn::GroupNorm> gn_;
  std::shared_ptr<nn::Linear> fc_;
};

bool training_lowers_loss() {
  // Fixed weights and data, the same losses on every run. 16 images with random labels: a
  // classifier with 512 features can learn them by heart, so the loss must fall below half.
  Generator gen(0);
  TinyClassifier model(gen);
  const Tensor images = randn({16, 3, 8, 8}, gen);
  const Tensor labels = randint(0, 4, {16}, gen);
  nn::SGD sgd(nn::make_param_groups(model), {.lr = 0.01, .momentum = 0.9, .weight_decay = 0.0});
  const int steps = 20;
  double first = 0.0, last = 0.0;
  for (int step = 0; step < steps; ++step) {
    sgd.zero_grad();
    const Tensor loss = cross_entropy(model.forward(images), labels);
    loss.backward();
    sgd.step();
    last = loss.item<double>();
    if (step == 0) first = last;
    if (step % 5 == 0 || step == steps - 1) std::printf("custom_op:        step %2d  loss %.4f\n", step, last);
  }
  char what[160];
  std::snprintf(what, sizeof what, "TinyClassifier (conv -> GroupNorm -> silu -> linear): loss %.4f -> %.4f in %d steps",
                first, last, steps);
  return report(std::isfinite(last) && last < 0.5 * first, what);
}

}  // namespace

int main() {
  std::printf("custom_op: gndet %s (CUDA: %s), a silu op added from outside the library\n", GNDET_VERSION,
              GNDET_CUDA_EMULATED ? "emulated device" : (GNDET_WITH_CUDA ? "yes" : "no"));
  try {
    // Every check runs, so that one failure does not hide another.
    bool ok = silu_is_registered();
    ok &= silu_cases_pass();
    ok &= wrong_backward_fails();
    ok &= training_lowers_loss();
    std::printf("custom_op: %s\n", ok ? "passed" : "FAILED");
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::printf("custom_op: FAILED with an error: %s\n", e.what());
    return 1;
  }
}
