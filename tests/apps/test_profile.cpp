// `gndet profile` end to end on the tiny test config: both modes print the three tables and write a
// Chrome trace whose kernels carry their module.
#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "gndet_config.h"
#include "tests/apps/cli_util.h"

using namespace gndet;

TEST_CASE("gndet profile: tables and a Chrome trace, in train and infer modes", "[apps][profiler]") {
  test::TempDir dir("profile");
  const std::string config = std::string(GNDET_SOURCE_DIR) + "/configs/tests/mask-rcnn_tiny_gn.json";
  for (const std::string mode : {"train", "infer"}) {
    INFO(mode);
    const std::string out = dir.str() + "/" + mode;
    const test::Run r = test::run_gndet("profile " + config + " --mode " + mode +
                                        " --size 96x128 --iters 2 --warmup 1 --out " + out);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("2 step(s)") != std::string::npos);
    CHECK(r.output.find("conv2d_forward_kernel") != std::string::npos);
    CHECK(r.output.find("module (kernels and backward nodes inside)") != std::string::npos);
    CHECK(r.output.find("backbone.layer1") != std::string::npos);
    CHECK((r.output.find("backward: conv2d") != std::string::npos) == (mode == "train"));
    std::ifstream f(out + "/trace.json");
    REQUIRE(f.good());
    std::stringstream ss;
    ss << f.rdbuf();
    const nlohmann::json trace = nlohmann::json::parse(ss.str());
    int kernels_in_modules = 0, steps = 0;
    for (const auto& e : trace.at("traceEvents")) {
      if (e.at("ph") != "X") continue;
      steps += e.at("cat") == "step";
      if (e.at("cat") == "kernel" && e.at("args").at("module").get<std::string>().rfind("backbone.", 0) == 0) {
        ++kernels_in_modules;
      }
    }
    CHECK(steps == 2);
    CHECK(kernels_in_modules > 10);
  }
  const test::Run bad = test::run_gndet("profile " + config + " --size 10x");
  CHECK(bad.exit_code != 0);
  CHECK(bad.output.find("--size") != std::string::npos);
}
