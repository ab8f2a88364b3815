// Mixed-precision training through the CLI on the tiny shapes model (CPU: emulated 16-bit
// products, ops/autocast.h): bfloat16 follows the float32 run; float16 with too large a loss
// scale skips its updates and backs the scale off, leaving the weights untouched; the scale is
// checkpointed and resumed; bad AMP settings are named.
#include <nlohmann/json.hpp>

#include "tensor/safetensors.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

using namespace gndet;
using test::run_gndet;

namespace {

std::string make_data(const test::TempDir& dir) {
  const std::string data = dir.str() + "/data";
  REQUIRE(run_gndet("make-shapes --out " + data + " --train 8 --val 4 --size 64 --seed 3").exit_code == 0);
  return data;
}

double saved_loss_scale(const std::string& checkpoint) {
  const SafetensorsFile f = load_safetensors(checkpoint);
  const nlohmann::json training = nlohmann::json::parse(f.metadata.at("training"));
  return training.value("loss_scale", 0.0);
}

size_t count(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("gndet train --amp bf16 follows the float32 run", "[apps][cli][amp][slow]") {
  test::TempDir dir("amp_bf16");
  const std::string opts = test::data_options(make_data(dir)) + " train_cfg.max_epochs=1";
  const std::string fp32 = dir.str() + "/fp32", bf16 = dir.str() + "/bf16";
  REQUIRE(run_gndet("train " + test::kTinyShapesConfig + " --no-validate --work-dir " + fp32 + opts).exit_code == 0);
  const test::Run r = run_gndet("train " + test::kTinyShapesConfig + " --no-validate --amp bf16 --work-dir " + bf16 + opts);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("mixed precision: bfloat16 products") != std::string::npos);
  CHECK(r.output.find("overflowed") == std::string::npos);  // bfloat16 has float32's range
  const auto a = test::read_train_scalars(fp32 + "/scalars.json"), b = test::read_train_scalars(bf16 + "/scalars.json");
  REQUIRE(a.size() == 4);
  REQUIRE(b.size() == 4);
  // The first iteration starts from the same weights and data: its losses differ only by the
  // rounding of the products' operands and results to 8 significant bits (~0.4% each, partly
  // averaging out over the sums), so 2% is a margin, while a broken product (wrong operand,
  // missing term) moves a loss by far more. Later iterations drift apart by the differing updates.
  for (const char* k : {"loss", "loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"}) {
    INFO(k);
    const double x = a[0][k].get<double>(), y = b[0][k].get<double>();
    CHECK(std::abs(x - y) <= 0.02 * std::abs(x));
    CHECK(x != y);  // the products did run in bfloat16
  }
  for (const auto& rec : b) CHECK(std::isfinite(rec["loss"].get<double>()));
  CHECK(saved_loss_scale(bf16 + "/epoch_1.safetensors") == 65536.0);  // GradScaler's default, no overflow
  CHECK(saved_loss_scale(fp32 + "/epoch_1.safetensors") == 0.0);      // float32 runs save none
}

TEST_CASE("float16: an overflowing loss scale skips the update and backs off; resume keeps the scale",
          "[apps][cli][amp][slow]") {
  test::TempDir dir("amp_fp16");
  const std::string opts = test::data_options(make_data(dir)) + " train_cfg.max_epochs=1";
  // The starting weights: a run whose updates change nothing (lr 0, no weight decay, no momentum).
  const std::string still = dir.str() + "/still";
  REQUIRE(run_gndet("train " + test::kTinyShapesConfig + " --no-validate --work-dir " + still + opts +
                    " optim_wrapper.optimizer.lr=0 optim_wrapper.optimizer.weight_decay=0 optim_wrapper.optimizer.momentum=0")
              .exit_code == 0);

  // A scale of 1e30 makes every 16-bit product of backward inf: all 4 updates are skipped.
  const std::string huge = test::derived_config(
      dir, "huge", R"("optim_wrapper": {"type": "AmpOptimWrapper", "dtype": "float16", "loss_scale": {"init_scale": 1e30}})");
  const std::string skip = dir.str() + "/skip";
  const test::Run r = run_gndet("train " + huge + " --no-validate --work-dir " + skip + opts);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("mixed precision: float16 products") != std::string::npos);
  CHECK(count(r.output, "update skipped") == 4);
  CHECK(r.output.find("iteration 1: gradients overflowed at loss scale 1e+30, update skipped, scale now 5e+29") !=
        std::string::npos);
  CHECK(saved_loss_scale(skip + "/epoch_1.safetensors") == 1e30 / 16);
  const SafetensorsFile w0 = load_safetensors(still + "/epoch_1.safetensors"), w1 = load_safetensors(skip + "/epoch_1.safetensors");
  int64_t params = 0;
  for (const auto& [name, t] : w1.tensors) {
    if (name.rfind("model.", 0) != 0) continue;
    INFO(name);
    CHECK(t.to_vector<double>() == w0.tensors.at(name).to_vector<double>());
    ++params;
  }
  CHECK(params > 50);

  // A scale that fits, backing off fast: updates happen, and --resume carries the scale on.
  const std::string fits = test::derived_config(
      dir, "fits",
      R"("optim_wrapper": {"type": "AmpOptimWrapper", "loss_scale": {"init_scale": 1e12, "backoff_factor": 1e-4, "growth_interval": 2}})");
  const std::string run = dir.str() + "/run";
  const test::Run first = run_gndet("train " + fits + " --no-validate --work-dir " + run + opts);
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  CHECK(first.output.find("overflowed at loss scale 1e+12") != std::string::npos);
  const size_t skipped = count(first.output, "update skipped");
  CHECK(skipped < 4);  // some updates went through
  const double scale = saved_loss_scale(run + "/epoch_1.safetensors");
  CHECK(scale < 1e12);
  CHECK(scale > 0.0);
  const test::Run resumed = run_gndet("train " + fits + " --no-validate --resume --work-dir " + run +
                                      test::data_options(dir.str() + "/data") + " train_cfg.max_epochs=2");
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(resumed.output.find("overflowed at loss scale 1e+12") == std::string::npos);  // it did not start over
  CHECK(saved_loss_scale(run + "/epoch_2.safetensors") > 0.0);
}

TEST_CASE("bad AMP settings are named before training starts", "[apps][cli][amp][errors]") {
  test::TempDir dir("amp_errors");
  const std::string opts = test::data_options(dir.str() + "/no_data");
  auto error_of = [&](const std::string& config, const std::string& extra = "") {
    const test::Run r = run_gndet("train " + config + " --work-dir " + dir.str() + "/work" + extra + opts);
    CHECK(r.exit_code != 0);
    return r.output;
  };
  CHECK(error_of(test::kTinyShapesConfig, " --amp fp8").find("--amp: expected bf16 (bfloat16) or fp16 (float16), got 'fp8'") !=
        std::string::npos);
  const std::string bad_scale = test::derived_config(dir, "bad_scale", R"("optim_wrapper": {"type": "AmpOptimWrapper", "loss_scale": "auto"})");
  CHECK(error_of(bad_scale).find("optim_wrapper.loss_scale") != std::string::npos);
  const std::string neg = test::derived_config(dir, "neg", R"("optim_wrapper": {"type": "AmpOptimWrapper", "loss_scale": {"init_scale": -1}})");
  CHECK(error_of(neg).find("init_scale must be positive") != std::string::npos);
  const std::string plain = test::derived_config(dir, "plain", R"("optim_wrapper": {"dtype": "bfloat16"})");
  CHECK(error_of(plain).find("only an AmpOptimWrapper has it") != std::string::npos);
  const std::string dt = test::derived_config(dir, "dt", R"("optim_wrapper": {"type": "AmpOptimWrapper", "dtype": "half"})");
  CHECK(error_of(dt).find("optim_wrapper.dtype: expected bf16") != std::string::npos);
}
