// SGD against hand-computed steps, parameter groups by mmengine's paramwise rules, the learning
// rate schedules at chosen iterations, gradient clipping.
#include <cmath>

#include "nn/conv_module.h"
#include "nn/layers.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "ops/elementwise.h"
#include "ops/optim_step.h"
#include "tensor/grad_mode.h"
#include "tensor/random.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using VD = std::vector<double>;

namespace {

void check_close(const VD& got, const VD& want) {
  REQUIRE(got.size() == want.size());
  // The hand values are exact decimals; the updates round in double (~1e-16 relative).
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == Approx(want[i]).epsilon(1e-12));
}

}  // namespace

TEST_CASE("SGD with momentum and weight decay matches a hand-computed two-step example", "[nn]") {
  Tensor p = from_data<double>({1.0, -2.0}).set_requires_grad();
  nn::SGD opt({{{{"p", p}}}}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  // Step 1: d_p = g + 0.01 p = (0.51, 0.23); buf = d_p; p -= 0.1 buf.
  p.set_grad(from_data<double>({0.5, 0.25}));
  opt.step();
  check_close(p.to_vector<double>(), {0.949, -2.023});
  check_close(opt.momentum_buffers().at("p").to_vector<double>(), {0.51, 0.23});
  // Step 2: d_p = (-0.3 + 0.00949, 0.1 - 0.02023); buf = 0.9 buf + d_p = (0.16849, 0.28677).
  p.set_grad(from_data<double>({-0.3, 0.1}));
  opt.step();
  check_close(opt.momentum_buffers().at("p").to_vector<double>(), {0.16849, 0.28677});
  check_close(p.to_vector<double>(), {0.932151, -2.051677});
  opt.zero_grad();
  CHECK_FALSE(p.grad().defined());
  opt.step();  // no gradient: nothing moves
  check_close(p.to_vector<double>(), {0.932151, -2.051677});

  // Nesterov, first step: buf = d_p = g; p -= lr * (g + 0.9 g).
  Tensor q = from_data<double>({1.0}).set_requires_grad();
  nn::SGD nesterov({{{{"q", q}}}}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.0, .nesterov = true});
  q.set_grad(from_data<double>({2.0}));
  nesterov.step();
  check_close(q.to_vector<double>(), {1.0 - 0.1 * 3.8});
}

TEST_CASE("SGD's one-pass update equals the unfused ops bit for bit, over several steps", "[nn]") {
  // The definition written as separate ops (the code before the fused kernel): each product and
  // sum rounds to float32 at the same place, so the fused kernel must agree exactly.
  struct Unfused {
    Tensor p, buf;
    void step(const Tensor& g, double lr, double momentum, double wd, bool nesterov) {
      autograd::NoGradGuard no_grad;
      Tensor d = wd != 0.0 ? g + p * wd : g;
      if (momentum != 0.0) {
        if (!buf.defined()) {
          buf = d.clone();
        } else {
          mul_(buf, momentum);
          add_(buf, d);
        }
        d = nesterov ? d + buf * momentum : buf;
      }
      add_(p, d, -lr);
    }
  };
  Generator gen(7);
  for (const auto& [momentum, wd, nesterov] : {std::tuple{0.9, 1e-4, false}, std::tuple{0.9, 0.0, false},
                                               std::tuple{0.8, 5e-3, true}, std::tuple{0.0, 1e-4, false}}) {
    INFO("momentum " << momentum << ", weight decay " << wd << ", nesterov " << nesterov);
    const Tensor start = randn({70001}, gen);  // odd: a vector loop's tail; above the parallel grain
    Tensor fused = start.clone().set_requires_grad();
    Unfused ref{start.clone(), Tensor()};
    nn::SGD opt({{{{"w", fused}}, 1.0, 0.5}}, {.lr = 0.02, .momentum = momentum, .weight_decay = wd, .nesterov = nesterov});
    for (int it = 0; it < 3; ++it) {
      const Tensor g = randn({70001}, gen);
      fused.set_grad(g);
      opt.step();
      ref.step(g, 0.02, momentum, wd * 0.5, nesterov);
      REQUIRE(fused.detach().to_vector<float>() == ref.p.to_vector<float>());
      if (momentum != 0.0) REQUIRE(opt.momentum_buffers().at("w").to_vector<float>() == ref.buf.to_vector<float>());
    }
    CHECK(opt.momentum_buffers().size() == (momentum != 0.0 ? 1u : 0u));
  }
}

TEST_CASE("sgd_step_ updates views through copies and names mismatched gradients", "[nn][errors]") {
  autograd::NoGradGuard no_grad;
  Tensor base = from_data<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor view = base.t();  // (3, 2), not contiguous
  Tensor buf;
  sgd_step_(view, from_data<double>({1, 1, 1, 1, 1, 1}, {3, 2}), buf, {.lr = 0.5, .momentum = 0.9});
  CHECK(base.to_vector<double>() == std::vector<double>{0.5, 1.5, 2.5, 3.5, 4.5, 5.5});
  CHECK(buf.to_vector<double>() == std::vector<double>{1, 1, 1, 1, 1, 1});  // first step: buf = g
  CHECK_THROWS_WITH(sgd_step_(view, from_data<double>({1, 1}), buf, {.lr = 0.5}),
                    Catch::Contains("the gradient ((2) float64 on cpu) does not match the parameter ((3, 2)"));
  Tensor wrong_buf = from_data<double>({0.0});
  CHECK_THROWS_WITH(sgd_step_(view, from_data<double>({1, 1, 1, 1, 1, 1}, {3, 2}), wrong_buf, {.lr = 0.5, .momentum = 0.9}),
                    Catch::Contains("the momentum buffer ((1) float64 on cpu) does not match the parameter"));
  Tensor ints = from_data<int64_t>({1});
  CHECK_THROWS_WITH(sgd_step_(ints, ints, buf, {}), Catch::Contains("expected a float32 or float64 parameter"));
}

TEST_CASE("parameter groups follow paramwise rules; each group has its lr and decay", "[nn]") {
  Generator gen(1);
  nn::Sequential model({std::make_shared<nn::ConvModule>(
                            nn::ConvModuleOptions{.conv = {.in_channels = 2, .out_channels = 4},
                                                  .norm = {.type = nn::NormType::GroupNorm, .num_groups = 2}},
                            gen),
                        std::make_shared<nn::Linear>(4, 3, true, gen)});
  // Detectron's recipe: biases 2x lr and no decay, GN no decay.
  const auto groups = nn::make_param_groups(model, {.bias_lr_mult = 2.0, .bias_decay_mult = 0.0, .norm_decay_mult = 0.0});
  REQUIRE(groups.size() == 3);
  auto names = [](const nn::ParamGroup& g) {
    std::vector<std::string> out;
    for (const auto& p : g.params) out.push_back(p.name);
    return out;
  };
  CHECK(names(groups[0]) == std::vector<std::string>{"0.conv.weight", "1.weight"});
  CHECK((groups[0].lr_mult == 1.0 && groups[0].decay_mult == 1.0));
  CHECK(names(groups[1]) == std::vector<std::string>{"0.gn.weight", "0.gn.bias"});  // norm: lr x1, no decay
  CHECK((groups[1].lr_mult == 1.0 && groups[1].decay_mult == 0.0));
  CHECK(names(groups[2]) == std::vector<std::string>{"1.bias"});
  CHECK((groups[2].lr_mult == 2.0 && groups[2].decay_mult == 0.0));
  CHECK(nn::make_param_groups(model).size() == 1);  // mmdetection's zoo: one group

  // A bias in the 2x / no-decay group moves by exactly 2 * lr * g (momentum 0 for clarity).
  Tensor w = from_data<double>({1.0}).set_requires_grad(), b = from_data<double>({1.0}).set_requires_grad();
  nn::SGD opt({{{{"w", w}}, 1.0, 1.0}, {{{"b", b}}, 2.0, 0.0}}, {.lr = 0.1, .momentum = 0.0, .weight_decay = 0.5});
  w.set_grad(from_data<double>({1.0}));
  b.set_grad(from_data<double>({1.0}));
  opt.set_lr(0.01);  // the schedule's value
  CHECK(opt.group_lr(1) == 0.02);
  opt.step();
  check_close(w.to_vector<double>(), {1.0 - 0.01 * (1.0 + 0.5)});
  check_close(b.to_vector<double>(), {1.0 - 0.02 * 1.0});

  // Frozen parameters are left out.
  model.freeze();
  CHECK(nn::make_param_groups(model).empty());
  CHECK_THROWS_WITH(nn::SGD({{{{"x", w}, {"x", b}}}}, {}), Catch::Contains("'x' appears twice"));
}

TEST_CASE("mmdetection and Detectron lr schedules at chosen iterations", "[nn]") {
  const nn::LrSchedule mm = nn::LrSchedule::mmdetection(0.02, {16, 22});
  // LinearLR(start 0.001, end 500): factor 0.001 + 0.999 * min(i, 499) / 499.
  CHECK(mm.lr_at(0, 0) == Approx(0.02 * 0.001).epsilon(1e-12));
  CHECK(mm.lr_at(0, 250) == Approx(0.02 * (0.001 + 0.999 * 250.0 / 499.0)).epsilon(1e-12));
  CHECK(mm.lr_at(0, 250) == Approx(0.01003002004).epsilon(1e-9));
  CHECK(mm.lr_at(0, 499) == Approx(0.02).epsilon(1e-12));
  CHECK(mm.lr_at(1, 7330) == Approx(0.02).epsilon(1e-12));
  CHECK(mm.lr_at(15, 100000) == Approx(0.02).epsilon(1e-12));
  CHECK(mm.lr_at(16, 117300) == Approx(0.002).epsilon(1e-12));  // first epoch after milestone 16
  CHECK(mm.lr_at(21, 160000) == Approx(0.002).epsilon(1e-12));
  CHECK(mm.lr_at(22, 161000) == Approx(0.0002).epsilon(1e-12));
  CHECK(mm.lr_at(16, 10) == Approx(0.002 * (0.001 + 0.999 * 10.0 / 499.0)).epsilon(1e-12));  // both at once

  const nn::LrSchedule dt = nn::LrSchedule::detectron(0.02, {120000, 160000});
  CHECK(dt.lr_at(0, 0) == Approx(0.02 / 3).epsilon(1e-12));
  CHECK(dt.lr_at(0, 499) == Approx(0.02 / 3).epsilon(1e-12));
  CHECK(dt.lr_at(0, 500) == Approx(0.02).epsilon(1e-12));
  CHECK(dt.lr_at(9, 119999) == Approx(0.02).epsilon(1e-12));
  CHECK(dt.lr_at(9, 120000) == Approx(0.002).epsilon(1e-12));
  CHECK(dt.lr_at(12, 160000) == Approx(0.0002).epsilon(1e-12));

  const nn::LrSchedule linear_dt({.base_lr = 1.0, .warmup = nn::WarmupKind::LinearDetectron, .warmup_iters = 500,
                                  .warmup_factor = 1.0 / 3.0, .milestones = {}, .by_epoch = false});
  CHECK(linear_dt.lr_at(0, 250) == Approx(2.0 / 3.0).epsilon(1e-12));
  CHECK(linear_dt.lr_at(0, 500) == 1.0);
  CHECK_THROWS_WITH(nn::LrSchedule({.milestones = {8, 3}}), Catch::Contains("milestones must be increasing"));
}

TEST_CASE("clip_grad_norm returns the global norm and rescales only above max_norm", "[nn]") {
  Tensor a = zeros({2}, kFloat64).set_requires_grad(), b = zeros({1}, kFloat64).set_requires_grad();
  a.set_grad(from_data<double>({3.0, 0.0}));
  b.set_grad(from_data<double>({4.0}));
  CHECK(nn::clip_grad_norm({a, b}, 10.0) == Approx(5.0));
  CHECK(b.grad().item<double>() == 4.0);  // below the limit: untouched
  CHECK(nn::clip_grad_norm({a, b}, 1.0) == Approx(5.0));
  CHECK(a.grad().to_vector<double>()[0] == Approx(3.0 / (5.0 + 1e-6)).epsilon(1e-12));
  CHECK(b.grad().item<double>() == Approx(4.0 / (5.0 + 1e-6)).epsilon(1e-12));
}
