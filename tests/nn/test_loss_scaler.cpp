// The loss scaler (nn/loss_scaler.h) against PyTorch's GradScaler rules: unscaling, the
// non-finite check, back-off, growth after growth_interval clean steps, the static scale, and
// its checks.
#include <cmath>
#include <limits>

#include "nn/loss_scaler.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;

namespace {

// A parameter whose gradient is `g`.
Tensor param_with_grad(const std::vector<float>& g) {
  Tensor p = zeros({static_cast<int64_t>(g.size())});
  p.set_requires_grad();
  p.set_grad(from_data(g));
  return p;
}

}  // namespace

TEST_CASE("loss scaler: unscale divides the gradients and reports inf and NaN", "[optim][amp]") {
  nn::LossScalerOptions o;
  o.init_scale = 4.0;
  const nn::LossScaler s(o);
  const Tensor a = param_with_grad({8.0f, -2.0f}), b = param_with_grad({1.0f}), frozen = zeros({2});
  CHECK(s.unscale({a, b, frozen}));  // a parameter without a gradient is skipped
  CHECK(a.grad().to_vector<float>() == std::vector<float>{2.0f, -0.5f});
  CHECK(b.grad().to_vector<float>() == std::vector<float>{0.25f});
  for (const float bad : {std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity(),
                          std::numeric_limits<float>::quiet_NaN()}) {
    INFO(bad);
    const Tensor c = param_with_grad({1.0f, bad, 3.0f}), d = param_with_grad({4.0f});
    CHECK_FALSE(s.unscale({c, d}));
    CHECK(d.grad().to_vector<float>() == std::vector<float>{1.0f});  // every gradient is unscaled all the same
  }
  // Large finite gradients are finite: the check cannot overflow.
  const Tensor big = param_with_grad({3e38f, 3e38f, 3e38f});
  CHECK(nn::LossScaler(nn::LossScalerOptions{true, 1.0, 2.0, 0.5, 2000}).unscale({big}));
}

TEST_CASE("loss scaler: dynamic back-off and growth follow GradScaler; a static scale stays", "[optim][amp]") {
  nn::LossScalerOptions o;
  o.init_scale = 8.0;
  o.growth_interval = 3;
  nn::LossScaler s(o);
  s.update(false);
  s.update(false);
  CHECK(s.scale() == 8.0);
  CHECK(s.growth_tracker() == 2);
  s.update(false);  // the third clean step in a row grows the scale
  CHECK(s.scale() == 16.0);
  CHECK(s.growth_tracker() == 0);
  s.update(false);
  s.update(true);  // an overflow halves it and restarts the count
  CHECK(s.scale() == 8.0);
  CHECK(s.growth_tracker() == 0);
  s.update(true);
  CHECK(s.scale() == 4.0);
  // Growth stops short of float32's infinity (GradScaler keeps its scale in float32).
  s.load_state(0x1p127, 2);
  s.update(false);
  CHECK(s.scale() == 0x1p127);
  CHECK(s.growth_tracker() == 0);

  nn::LossScalerOptions st;
  st.dynamic = false;
  st.init_scale = 512.0;
  nn::LossScaler fixed(st);
  fixed.update(true);
  fixed.update(false);
  CHECK(fixed.scale() == 512.0);
}

TEST_CASE("loss scaler: bad options and saved states are named", "[optim][amp][errors]") {
  auto with = [](auto edit) {
    nn::LossScalerOptions o;
    edit(o);
    return o;
  };
  CHECK_THROWS_WITH(nn::LossScaler(with([](auto& o) { o.init_scale = 0; })), Catch::Contains("init_scale"));
  CHECK_THROWS_WITH(nn::LossScaler(with([](auto& o) { o.init_scale = INFINITY; })), Catch::Contains("init_scale"));
  CHECK_THROWS_WITH(nn::LossScaler(with([](auto& o) { o.init_scale = 1e300; })), Catch::Contains("float32"));  // inf in float32
  CHECK_THROWS_WITH(nn::LossScaler(with([](auto& o) { o.growth_factor = 0.5; })), Catch::Contains("growth_factor"));
  CHECK_THROWS_WITH(nn::LossScaler(with([](auto& o) { o.backoff_factor = 1.0; })), Catch::Contains("backoff_factor"));
  CHECK_THROWS_WITH(nn::LossScaler(with([](auto& o) { o.growth_interval = 0; })), Catch::Contains("growth_interval"));
  nn::LossScaler s{nn::LossScalerOptions{}};
  CHECK_THROWS_WITH(s.load_state(-1.0, 0), Catch::Contains("saved scale"));
  CHECK_THROWS_WITH(s.load_state(1e39, 0), Catch::Contains("saved scale"));
  CHECK_THROWS_WITH(s.load_state(1.0, -3), Catch::Contains("growth tracker"));
  CHECK(s.scale() == 65536.0);  // untouched by the refused loads
}
