// Checkpoints: a full round trip (weights, momentum, lr, counters, RNG, config), mismatch
// reports by name, corrupt files, plain weight files.
#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "nn/checkpoint.h"
#include "nn/conv_module.h"
#include "nn/layers.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/safetensors.h"
#include "tests/support.h"

using namespace gndet;

namespace {

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("gndet_ckpt_" + name + "_" + std::to_string(::getpid()))).string();
}

std::shared_ptr<nn::Sequential> make_model(Generator& gen, int64_t hidden = 4) {
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::UnaryModule>>{
      std::make_shared<nn::ConvModule>(nn::ConvModuleOptions{
                                           .conv = {.in_channels = 2, .out_channels = hidden, .kernel = {3, 3}, .padding = {1, 1}},
                                           .norm = {.type = nn::NormType::GroupNorm, .num_groups = 2}},
                                       gen),
      std::make_shared<nn::ConvModule>(nn::ConvModuleOptions{.conv = {.in_channels = hidden, .out_channels = 2},
                                                             .norm = {.type = nn::NormType::FrozenBatchNorm}},
                                       gen)});
}

// One SGD step on a fixed input, so that every parameter has a momentum buffer.
void train_step(nn::UnaryModule& net, nn::SGD& opt, Generator& gen) {
  opt.zero_grad();
  sum(net.forward(randn({2, 2, 5, 5}, gen)) * 0.1).backward();
  opt.step();
}

}  // namespace

TEST_CASE("a checkpoint round trip restores weights, momentum, lr, counters, RNG and config", "[nn]") {
  Generator gen(1);
  auto model = make_model(gen);
  nn::SGD opt(nn::make_param_groups(*model), {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-4});
  train_step(*model, opt, gen);
  opt.set_lr(0.05);
  const std::string path = temp_path("roundtrip");
  Generator rng(99);
  rng.normal();  // leaves a spare normal: the state string must capture it
  nn::save_checkpoint(path, *model, &opt, {.iteration = 1234, .epoch = 3, .rng_state = rng.state(),
                                           .config_json = R"({"model": {"type": "MaskRCNN"}})"});

  // The file uses mmdetection's key names under "model." and momentum under "optim.momentum.".
  const SafetensorsFile raw = load_safetensors(path);
  CHECK(raw.tensors.count("model.0.conv.weight") == 1);
  CHECK(raw.tensors.count("model.1.bn.running_var") == 1);
  CHECK(raw.tensors.count("optim.momentum.0.gn.weight") == 1);
  CHECK(raw.metadata.at("format") == "gndet.checkpoint.v1");

  Generator other(7);
  auto restored = make_model(other);
  nn::SGD opt2(nn::make_param_groups(*restored), {.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-4});
  nn::TrainingState state;
  const nn::CheckpointReport report = nn::load_checkpoint(path, *restored, &opt2, &state);
  CHECK(report.ok());
  for (const auto& [name, t] : model->state_dict()) {
    INFO(name);
    CHECK(test::max_abs_diff(t, restored->state_dict().at(name)) == 0.0);
  }
  REQUIRE(opt2.momentum_buffers().size() == opt.momentum_buffers().size());
  for (const auto& [name, buf] : opt.momentum_buffers()) CHECK(test::max_abs_diff(buf, opt2.momentum_buffers().at(name)) == 0.0);
  CHECK(opt2.lr() == 0.05);
  CHECK(state.iteration == 1234);
  CHECK(state.epoch == 3);
  CHECK(state.config_json == R"({"model": {"type": "MaskRCNN"}})");
  Generator resumed;
  resumed.set_state(state.rng_state);
  CHECK(resumed.normal() == rng.normal());

  // Both runs continue identically.
  Generator g1(5), g2(5);
  train_step(*model, opt, g1);
  train_step(*restored, opt2, g2);
  for (const auto& [name, t] : model->state_dict()) CHECK(test::max_abs_diff(t, restored->state_dict().at(name)) == 0.0);
  std::filesystem::remove(path);
}

TEST_CASE("loading a checkpoint into a different model names every mismatch", "[nn]") {
  Generator gen(2);
  auto model = make_model(gen, 4);
  const std::string path = temp_path("mismatch");
  nn::save_checkpoint(path, *model, nullptr, {});
  auto wider = make_model(gen, 6);  // conv 0 has 6 output channels: shapes differ
  const Tensor before = wider->state_dict().at("0.conv.weight").clone();
  try {
    nn::load_checkpoint(path, *wider, nullptr, nullptr);
    FAIL("strict load did not throw");
  } catch (const Error& e) {
    const std::string msg = e.what();
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("0.conv.weight (expected (6, 2, 3, 3), got (4, 2, 3, 3))"));
    CHECK_THAT(msg, Catch::Contains("1.conv.weight (expected (2, 6, 1, 1), got (2, 4, 1, 1))"));
  }
  CHECK(test::max_abs_diff(before, wider->state_dict().at("0.conv.weight")) == 0.0);  // nothing loaded

  // Non-strict: loads what fits and reports the rest.
  const nn::CheckpointReport r = nn::load_checkpoint(path, *wider, nullptr, nullptr, false);
  CHECK(r.model.mismatched.size() == 4);  // 0.conv.weight, 0.gn.weight, 0.gn.bias, 1.conv.weight
  CHECK(r.model.missing.empty());
  CHECK(test::max_abs_diff(wider->state_dict().at("1.bn.running_var"), model->state_dict().at("1.bn.running_var")) == 0.0);
  std::filesystem::remove(path);
}

TEST_CASE("corrupt checkpoints and plain weight files", "[nn][errors]") {
  Generator gen(3);
  auto model = make_model(gen);
  const std::string path = temp_path("corrupt");
  nn::save_checkpoint(path, *model, nullptr, {});
  const auto size = std::filesystem::file_size(path);
  std::filesystem::resize_file(path, size - 17);  // truncated
  CHECK_THROWS_WITH(nn::load_checkpoint(path, *model, nullptr, nullptr), Catch::Contains(path) && Catch::Contains("truncated"));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "not a checkpoint";
  CHECK_THROWS_WITH(nn::load_checkpoint(path, *model, nullptr, nullptr), Catch::Contains(path));
  CHECK_THROWS_WITH(nn::load_checkpoint(temp_path("absent"), *model, nullptr, nullptr), Catch::Contains("cannot open"));

  // A plain safetensors file of weights (e.g. converted from a .pth) loads by name.
  save_safetensors(path, model->state_dict());
  CHECK_THROWS_WITH(nn::load_checkpoint(path, *model, nullptr, nullptr), Catch::Contains("not a gndet checkpoint"));
  const nn::StateDict plain = nn::load_state_dict_from_file(path);
  CHECK(plain.size() == model->state_dict().size());
  CHECK(model->load_state_dict(plain).ok());
  // ... and a checkpoint's model part, without its prefix.
  nn::save_checkpoint(path, *model, nullptr, {});
  CHECK(nn::load_state_dict_from_file(path).count("0.conv.weight") == 1);
  std::filesystem::remove(path);
}
