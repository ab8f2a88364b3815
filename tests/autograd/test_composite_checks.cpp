// Composite gradient checks: the sampling and directional modes of gradcheck_leaves, and every
// registered whole-layer / whole-loss case (`gndet gradcheck --modules`) passing in float64.
#include <set>

#include "autograd/composite_check.h"
#include "autograd/function.h"
#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;

namespace {
// y = x * x with a backward that is wrong only for element `bad` (3x instead of 2x there).
Tensor square_wrong_at(const Tensor& x, int64_t bad) {
  static const autograd::OpDef op("test_square_wrong_at_one");
  Tensor y;
  {
    autograd::NoGradGuard g;
    y = x.detach() * x.detach();
  }
  autograd::record(op, {x}, {y}, [sx = autograd::Saved(x), bad](const Tensors& g) {
    Tensor dx = g[0] * sx.get() * 2.0;
    dx.data<double>()[bad] *= 1.5;
    return Tensors{dx};
  });
  return y;
}
}  // namespace

TEST_CASE("gradcheck_leaves samples elements, and its random directions still see every one", "[autograd]") {
  Generator gen(5);
  Tensor x = (rand({100}, gen, kFloat64) + 0.5).detach().set_requires_grad(true);
  const std::vector<double> before = x.to_vector<double>();
  autograd::GradcheckOptions sampled;
  sampled.max_elements_per_input = 10;
  // The sample never contains element 99 for this seed (checked below): sampling alone misses it.
  const auto r = autograd::gradcheck_leaves([&] { return Tensors{square_wrong_at(x, 99)}; }, {x}, sampled);
  CHECK(r.elements == 10);
  CHECK(r.total_elements == 100);
  CHECK(r.passed);
  sampled.directional = true;
  const auto d = autograd::gradcheck_leaves([&] { return Tensors{square_wrong_at(x, 99)}; }, {x}, sampled);
  CHECK_FALSE(d.passed);
  CHECK(d.directions == 1);
  CHECK(d.worst.find("random direction") != std::string::npos);
  // Checking every element finds the one.
  const auto all = autograd::gradcheck_leaves([&] { return Tensors{square_wrong_at(x, 99)}; }, {x});
  CHECK_FALSE(all.passed);
  CHECK(all.worst.find("(99)") != std::string::npos);
  CHECK(x.to_vector<double>() == before);  // the leaf is restored exactly
}

TEST_CASE("every composite gradcheck case passes in float64", "[gradcheck_modules]") {
  const auto& cases = autograd::composite_cases();
  std::set<std::string> names;
  for (const auto& c : cases) names.insert(c.name);
  // The cases issue 13 asks for, by name: a renamed or dropped one fails here.
  for (const char* n : {"conv_gn_relu", "convws_gn", "gn_bottleneck", "resnet_stem", "fpn", "rpn_head_loss",
                        "roi_box_head_loss", "mask_head_loss", "two_stage_loss"}) {
    INFO("case " << n);
    CHECK(names.count(n) == 1);
  }
  for (const auto& c : cases) {
    const autograd::GradcheckResult r = autograd::run_composite_case(c);
    INFO(c.name << ": " << r.error << r.worst << "\n  max abs " << r.max_abs_error << ", max rel " << r.max_rel_error);
    CHECK(r.passed);
    CHECK(r.elements > 0);
    CHECK(r.directions > 0);
  }
}
