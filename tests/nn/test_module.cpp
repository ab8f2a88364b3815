// Module: dotted names in mmdetection's form, state_dict round trips and reports, placement,
// freezing; the layers and initialisers.
#include <cmath>
#include <memory>

#include "tensor/grad_mode.h"
#include "nn/conv_module.h"
#include "nn/init.h"
#include "nn/layers.h"
#include "nn/norm_layers.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/norm.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using Names = std::vector<std::string>;

namespace {

// A slice of a detector: a neck with two lateral ConvModules (GN) and a frozen-BN stem layer.
class TinyNeck : public nn::Module {
 public:
  explicit TinyNeck(Generator& gen) {
    laterals_ = register_module("lateral_convs", std::make_shared<nn::Sequential>());
    for (int i = 0; i < 2; ++i) {
      laterals_->push_back(std::make_shared<nn::ConvModule>(
          nn::ConvModuleOptions{.conv = {.in_channels = 4, .out_channels = 8},
                                .norm = {.type = nn::NormType::GroupNorm, .num_groups = 4},
                                .relu = false},
          gen));
    }
    bn_ = register_module("bn", std::make_shared<nn::FrozenBatchNorm2d>(8));
    scale_ = register_parameter("scale", ones({1}));
  }
  Tensor forward(const Tensor& x) { return bn_->forward((*laterals_)[0]->forward(x)) * scale_; }
  std::shared_ptr<nn::Sequential> laterals_;
  std::shared_ptr<nn::FrozenBatchNorm2d> bn_;
  Tensor scale_;
};

Names names_of(const nn::NamedTensors& list) {
  Names out;
  for (const auto& [name, t] : list) out.push_back(name);
  return out;
}

}  // namespace

TEST_CASE("named parameters, buffers and modules use mmdetection's dotted names in order", "[nn]") {
  Generator gen(1);
  TinyNeck neck(gen);
  CHECK(names_of(neck.named_parameters()) == Names{"scale", "lateral_convs.0.conv.weight", "lateral_convs.0.gn.weight",
                                                   "lateral_convs.0.gn.bias", "lateral_convs.1.conv.weight",
                                                   "lateral_convs.1.gn.weight", "lateral_convs.1.gn.bias"});
  CHECK(names_of(neck.named_buffers()) == Names{"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"});
  Names modules;
  for (const auto& [name, m] : neck.named_modules()) modules.push_back(name);
  CHECK(modules == Names{"", "lateral_convs", "lateral_convs.0", "lateral_convs.0.conv", "lateral_convs.0.gn",
                         "lateral_convs.1", "lateral_convs.1.conv", "lateral_convs.1.gn", "bn"});
  CHECK(neck.state_dict().size() == 11);
  CHECK(neck.parameters().size() == 7);
  CHECK(neck.state_dict().at("bn.running_var").to_vector<float>() == std::vector<float>(8, 1.0f));
  // The handles a module keeps are the tensors its state_dict exposes.
  CHECK(neck.state_dict().at("scale").is_same(neck.scale_));
  CHECK_THROWS_WITH(neck.register_parameter("scale", ones({1})), Catch::Contains("'scale' is already registered"));
  CHECK_THROWS_WITH(neck.register_buffer("a.b", ones({1})), Catch::Contains("invalid name 'a.b'"));
}

TEST_CASE("load_state_dict copies by name and reports missing, unexpected and mis-shaped keys", "[nn]") {
  Generator gen(2), other_gen(3);
  TinyNeck a(gen), b(other_gen);
  nn::StateDict state = a.state_dict();
  CHECK(b.load_state_dict(state).ok());
  CHECK(test::max_abs_diff(b.laterals_->named_parameters()[0].second, a.laterals_->named_parameters()[0].second) == 0.0);
  CHECK_FALSE(b.state_dict().at("scale").is_same(a.state_dict().at("scale")));  // copied, not aliased

  state.erase("bn.running_mean");
  state["neck.extra"] = zeros({2});
  state["lateral_convs.1.gn.weight"] = zeros({4});
  const Tensor before = b.state_dict().at("lateral_convs.0.gn.bias").clone();
  try {
    b.load_state_dict(state);
    FAIL("strict load_state_dict did not throw");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains("missing keys (1): bn.running_mean"));
    CHECK_THAT(msg, Catch::Contains("unexpected keys (1): neck.extra"));
    CHECK_THAT(msg, Catch::Contains("lateral_convs.1.gn.weight (expected (8), got (4))"));
  }
  const nn::LoadReport report = b.load_state_dict(state, false);
  CHECK(report.missing == Names{"bn.running_mean"});
  CHECK(report.unexpected == Names{"neck.extra"});
  REQUIRE(report.mismatched.size() == 1);
  CHECK(report.mismatched[0].got == Shape{4});
  CHECK(before.shape() == Shape{8});
}

TEST_CASE("to(dtype) keeps member handles valid; freeze, zero_grad and train recurse", "[nn]") {
  Generator gen(4);
  TinyNeck neck(gen);
  const Tensor x = randn({2, 4, 3, 3}, gen);
  sum(neck.forward(x)).backward();
  REQUIRE(neck.scale_.grad().defined());
  neck.to(kFloat64);
  CHECK(neck.scale_.dtype() == kFloat64);  // the member handle sees the new data
  CHECK(neck.scale_.grad().dtype() == kFloat64);
  CHECK(neck.bn_->named_buffers()[0].second.dtype() == kFloat64);
  CHECK(neck.forward(x.to(kFloat64)).dtype() == kFloat64);
  neck.to(kCPU);  // already there: a no-op

  neck.zero_grad();
  CHECK_FALSE(neck.scale_.grad().defined());
  neck.freeze();
  for (const auto& [name, p] : neck.named_parameters()) CHECK_FALSE(p.requires_grad());
  neck.eval();
  CHECK_FALSE((*neck.laterals_)[1]->is_training());
  neck.train();
  CHECK((*neck.laterals_)[1]->is_training());
}

TEST_CASE("Conv2d with weight standardisation, ConvModule's bias rule, Linear and Sequential", "[nn]") {
  Generator gen(5);
  nn::Conv2d ws({.in_channels = 3, .out_channels = 4, .kernel = {3, 3}, .padding = {1, 1}, .bias = false,
                 .weight_standardization = true},
                gen);
  CHECK(names_of(ws.named_parameters()) == Names{"weight"});
  const Tensor x = randn({1, 3, 5, 5}, gen);
  CHECK(test::max_abs_diff(ws.forward(x), conv2d(x, weight_standardization(ws.weight()), Tensor(), {1, 1}, {1, 1})) == 0.0);

  nn::ConvModule with_norm(
      {.conv = {.in_channels = 3, .out_channels = 4}, .norm = {.type = nn::NormType::GroupNorm, .num_groups = 2}}, gen);
  nn::ConvModule plain({.conv = {.in_channels = 3, .out_channels = 4}, .norm = {}}, gen);  // no norm
  nn::ConvModule frozen({.conv = {.in_channels = 3, .out_channels = 4}, .norm = {.type = nn::NormType::FrozenBatchNorm}},
                        gen);
  CHECK(names_of(with_norm.named_parameters()) == Names{"conv.weight", "gn.weight", "gn.bias"});
  CHECK(names_of(plain.named_parameters()) == Names{"conv.weight", "conv.bias"});
  CHECK(names_of(frozen.named_buffers()) == Names{"bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"});
  CHECK(sum(abs(plain.conv()->bias())).item<float>() == 0.0f);  // mmcv: conv bias initialised to 0
  CHECK(min(plain.forward(x)).item<float>() >= 0.0f);           // ReLU by default

  nn::Sequential seq({std::make_shared<nn::Linear>(3, 5, true, gen), std::make_shared<nn::ReLU>(),
                      std::make_shared<nn::Linear>(5, 2, false, gen)});
  CHECK(names_of(seq.named_parameters()) == Names{"0.weight", "0.bias", "2.weight"});
  CHECK(seq.forward(randn({7, 3}, gen)).shape() == Shape{7, 2});
  nn::ConvTranspose2d up({.in_channels = 4, .out_channels = 2, .kernel = {2, 2}, .stride = {2, 2}}, gen);
  CHECK(up.weight().shape() == Shape{4, 2, 2, 2});
  CHECK(up.forward(randn({1, 4, 3, 3}, gen)).shape() == Shape{1, 2, 6, 6});
  nn::MaxPool2d pool({3, 3}, {2, 2}, {1, 1});
  CHECK(pool.forward(randn({1, 1, 8, 8}, gen)).shape() == Shape{1, 1, 4, 4});
}

TEST_CASE("initialisers: fans, gains and the spread of the drawn values", "[nn]") {
  Generator gen(6);
  Tensor w = empty({256, 128, 3, 3});
  CHECK(nn::init::fans(w) == std::pair<int64_t, int64_t>{128 * 9, 256 * 9});
  // 294912 samples: the sample std has a relative spread of ~0.13%, so 2% is a 15-sigma margin.
  nn::init::kaiming_normal(w, gen, nn::init::FanMode::FanOut, nn::init::Nonlinearity::ReLU);
  const double expected_std = std::sqrt(2.0 / (256 * 9));
  CHECK(std::sqrt(mean(w * w).item<float>()) == Approx(expected_std).epsilon(0.02));
  CHECK(std::abs(mean(w).item<float>()) < 0.01 * expected_std);  // the mean's spread is std / 543: a 5-sigma bound
  nn::init::xavier_uniform(w, gen);
  const double bound = std::sqrt(6.0 / (128 * 9 + 256 * 9));
  CHECK(max(abs(w)).item<float>() <= bound);
  CHECK(max(abs(w)).item<float>() > 0.99 * bound);  // the extremes of 294912 uniform draws reach the bound
  nn::init::normal(w, gen, 0.5, 0.01);
  CHECK(mean(w).item<float>() == Approx(0.5).epsilon(1e-3));
  nn::init::constant(w, 3.0);
  CHECK(min(w).item<float>() == 3.0f);
  CHECK(nn::init::gain(nn::init::Nonlinearity::LeakyReLU, std::sqrt(5.0)) == Approx(std::sqrt(1.0 / 3.0)));

  // The same seed gives the same layer.
  Generator g1(42), g2(42);
  nn::Conv2d c1({.in_channels = 2, .out_channels = 3, .kernel = {3, 3}}, g1), c2({.in_channels = 2, .out_channels = 3, .kernel = {3, 3}}, g2);
  CHECK(test::max_abs_diff(c1.weight(), c2.weight()) == 0.0);
  CHECK(test::max_abs_diff(c1.bias(), c2.bias()) == 0.0);
  // PyTorch's default: |w| <= 1 / sqrt(fan_in) = 1 / sqrt(18).
  CHECK(max(abs(c1.weight())).item<float>() <= 1.0 / std::sqrt(18.0));
}
