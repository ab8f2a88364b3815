// gndet convert, through the binary: zoo formats in, .pth out, errors by name.
#include <catch2/catch.hpp>

#include "gndet_config.h"
#include "nn/checkpoint_io/torch_file.h"
#include "tensor/safetensors.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

using namespace gndet;

namespace {
std::string fixture(const std::string& name) {
  return std::string(GNDET_SOURCE_DIR) + "/tests/nn/fixtures/checkpoints/" + name;
}
}  // namespace

TEST_CASE("cli: gndet convert .pth -> safetensors -> .pth keeps every tensor", "[checkpoint_io][cli]") {
  test::TempDir dir("convert");
  const std::string st = dir.str() + "/v.safetensors", pth = dir.str() + "/v.pth";
  const test::Run a = test::run_gndet("convert " + fixture("zip_views.pth") + " " + st);
  INFO(a.output);
  REQUIRE(a.exit_code == 0);
  CHECK_THAT(a.output, Catch::Contains("pytorch zip, state_dict layout, 4 tensors"));
  const test::Run b = test::run_gndet("convert " + st + " " + pth);
  INFO(b.output);
  REQUIRE(b.exit_code == 0);
  const SafetensorsFile converted = load_safetensors(st);
  const nn::ckpt::ForeignWeights back = nn::ckpt::read_foreign_checkpoint(pth);
  REQUIRE(back.tensors.size() == converted.tensors.size());
  for (const auto& [name, t] : back.tensors) {
    INFO(name);
    REQUIRE(converted.tensors.count(name));
    CHECK(test::max_abs_diff(t, converted.tensors.at(name)) == 0.0);
  }
}

TEST_CASE("cli: gndet convert names what it refuses", "[checkpoint_io][cli]") {
  test::TempDir dir("convert_bad");
  const std::string out = dir.str() + "/x.safetensors";
  const test::Run evil = test::run_gndet("convert " + fixture("malicious_os_system.pkl") + " " + out);
  CHECK(evil.exit_code == 1);
  CHECK_THAT(evil.output, Catch::Contains("'os.system'"));
  // Two test blobs of the Python 2 fixture have no Detectron name: listed, nothing written.
  const test::Run unmapped = test::run_gndet("convert " + fixture("detectron_py2.pkl") + " " + out);
  CHECK(unmapped.exit_code == 1);
  CHECK_THAT(unmapped.output, Catch::Contains("2 keys have no gndet name") && Catch::Contains("big_endian_w, fortran_w"));
  CHECK_FALSE(std::filesystem::exists(out));
  // Shapes that do not fit the config's model.
  const test::Run shapes = test::run_gndet("convert " + fixture("mmengine.pth") + " " + out + " --config " +
                                           std::string(GNDET_SOURCE_DIR) + "/configs/tests/mask-rcnn_tiny_gn.json");
  CHECK(shapes.exit_code == 1);
  CHECK_THAT(shapes.output, Catch::Contains("do not fit the model") && Catch::Contains("backbone.conv1.weight"));
  CHECK_FALSE(std::filesystem::exists(out));
}
