// The CLI on a CUDA device (a GPU, or the emulated device where none is): the tiny GN Mask R-CNN
// trains with the CPU's losses, in float32 and under --amp bf16 / fp16 (their 16-bit kernels),
// and `gndet gradcheck --device cuda` (ops in float64 on the device) and `--modules --device cuda`
// (layers in float32 against the CPU's float64) pass.
#include <cmath>

#include "tensor/backend.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

using namespace gndet;
using test::run_gndet;

namespace {

std::string make_data(const test::TempDir& dir, int images) {
  const std::string data = dir.str() + "/data";
  REQUIRE(run_gndet("make-shapes --out " + data + " --train " + std::to_string(images) + " --val 2 --size 64 --seed 3")
              .exit_code == 0);
  return data;
}

// One epoch of the tiny shapes config; returns the train records of its scalars.json.
std::vector<nlohmann::json> train(const test::TempDir& dir, const std::string& data, const std::string& name,
                                  const std::string& device, const std::string& extra = "") {
  const std::string work = dir.str() + "/" + name;
  // TF32 off: the comparisons below are float32's (TF32 rounds every product's operands to 10 bits).
  const test::Run r = test::run_shell("GNDET_ALLOW_TF32=0 " + std::string(GNDET_BUILD_DIR) + "/apps/gndet train " +
                                      test::kTinyShapesConfig + " --no-validate --device " + device + extra +
                                      " --work-dir " + work + test::data_options(data) + " train_cfg.max_epochs=1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  if (device == "cuda") CHECK(r.output.find("device cuda:0 (") != std::string::npos);
  return test::read_train_scalars(work + "/scalars.json");
}

double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-12); }

}  // namespace

TEST_CASE("gndet train --device cuda follows the CPU's losses", "[cuda][cli][slow]") {
  GNDET_REQUIRE_CUDA();
  test::TempDir dir("cuda_train");
  const std::string data = make_data(dir, 8);
  const auto cpu = train(dir, data, "cpu", "cpu"), gpu = train(dir, data, "gpu", "cuda");
  REQUIRE(cpu.size() == 4);
  REQUIRE(gpu.size() == 4);
  // Same weights, data and sampling seeds; float32 sums in another order (the device's reductions
  // and GroupNorm statistics in float, the CPU's in double; another GEMM blocking) move features
  // by ~1e-6 relative, and four small updates keep the weights that close. The RPN's losses see
  // only anchors and ground truth: 1e-4. The RoI head's depend on which proposals each device
  // ranked first: a near-tie swapping a few of the >= 64 sampled RoIs moves them by a few percent
  // at most, so 5% (and 5 of 128 samples in acc); a wrong kernel moves them by far more. (Measured
  // on the emulated device: every loss within 1e-7 of the CPU's.)
  for (size_t i = 0; i < cpu.size(); ++i) {
    INFO("iteration " << i + 1);
    for (const char* k : {"loss_rpn_cls", "loss_rpn_bbox"}) {
      INFO(k);
      CHECK(rel(gpu[i][k].get<double>(), cpu[i][k].get<double>()) <= 1e-4);
    }
    for (const char* k : {"loss", "loss_cls", "loss_bbox", "loss_mask"}) {
      INFO(k);
      CHECK(rel(gpu[i][k].get<double>(), cpu[i][k].get<double>()) <= 5e-2);
    }
    CHECK(std::abs(gpu[i]["acc"].get<double>() - cpu[i]["acc"].get<double>()) <= 5 * 100.0 / 128);
  }
}

TEST_CASE("gndet train --device cuda --amp bf16 / fp16 run their 16-bit kernels with the CPU's numbers",
          "[cuda][cli][amp][slow]") {
  GNDET_REQUIRE_CUDA();
  test::TempDir dir("cuda_amp");
  const std::string data = make_data(dir, 4);
  const auto fp32 = train(dir, data, "fp32", "cpu");
  REQUIRE(fp32.size() == 2);
  for (const std::string amp : {"bf16", "fp16"}) {
    INFO(amp);
    const auto cpu = train(dir, data, "cpu_" + amp, "cpu", " --amp " + amp);
    const auto gpu = train(dir, data, "gpu_" + amp, "cuda", " --amp " + amp);
    REQUIRE(gpu.size() == 2);
    // The first iteration: both devices multiply the same 16-bit operands exactly and round each
    // product's result once (the CPU emulates it, the device's GEMM and convolution kernels take
    // 16-bit tensors): only float32 summation order separates them, ~1e-5 of the losses (measured
    // 9e-6), while it differs from float32 by the 16-bit rounding itself (~1e-4 .. 1e-2).
    for (const char* k : {"loss", "loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"}) {
      INFO(k);
      const double g = gpu[0][k].get<double>();
      CHECK(rel(g, cpu[0][k].get<double>()) <= 1e-3);
      CHECK(rel(g, fp32[0][k].get<double>()) <= 2e-2);
    }
    CHECK(gpu[0]["loss"].get<double>() != fp32[0]["loss"].get<double>());  // the products did run in 16 bits
    for (const auto& rec : gpu) CHECK(std::isfinite(rec["loss"].get<double>()));
  }
}

TEST_CASE("gndet gradcheck --device cuda and --modules --device cuda pass", "[cuda][cli]") {
  GNDET_REQUIRE_CUDA();
  const test::Run ops = run_gndet("gradcheck --device cuda");
  INFO(ops.output);
  CHECK(ops.exit_code == 0);
  CHECK(ops.output.find("in float64 on cuda:0 (") != std::string::npos);
  CHECK(ops.output.find(" 0 failed, 0 skipped") != std::string::npos);
  CHECK(ops.output.find("FAIL ") == std::string::npos);
  const test::Run modules = run_gndet("gradcheck --modules --device cuda");
  INFO(modules.output);
  CHECK(modules.exit_code == 0);
  CHECK(modules.output.find("(TF32 off)") != std::string::npos);
  CHECK(modules.output.find(" 0 failed") != std::string::npos);
}
