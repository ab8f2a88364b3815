// TensorBoard event files (apps/tensorboard.h): CRC-32C on published vectors, the record framing
// and protobuf fields read back by an independent decoder, and by TensorBoard's own reader when
// the Python package is installed (skipped, saying so, otherwise).
#include <cmath>

#include "apps/tensorboard.h"
#include "tensor/factory.h"
#include "tests/apps/cli_util.h"
#include "tests/apps/tfevents.h"
#include "tests/support.h"

using namespace gndet;

TEST_CASE("crc32c matches the published check values", "[apps][tensorboard]") {
  const std::string digits = "123456789";
  CHECK(app::crc32c(digits.data(), digits.size()) == 0xE3069283u);  // the CRC-32C check value
  // RFC 3720 (iSCSI), appendix B.4: 32 bytes of zeros, of 0xFF, and 0x00..0x1F.
  std::vector<uint8_t> zeros(32, 0), ff(32, 0xFF), inc(32);
  for (int i = 0; i < 32; ++i) inc[static_cast<size_t>(i)] = static_cast<uint8_t>(i);
  CHECK(app::crc32c(zeros.data(), zeros.size()) == 0x8A9136AAu);
  CHECK(app::crc32c(ff.data(), ff.size()) == 0x62A8AB43u);
  CHECK(app::crc32c(inc.data(), inc.size()) == 0x46DD794Eu);
  // Incremental: two halves give the CRC of the whole.
  CHECK(app::crc32c(digits.data() + 4, 5, app::crc32c(digits.data(), 4)) == 0xE3069283u);
}

TEST_CASE("event files hold the scalars and images written, for our decoder and TensorBoard's", "[apps][tensorboard]") {
  test::TempDir dir("tensorboard");
  std::string path;
  Tensor picture = zeros({6, 8, 3}, kUInt8);
  picture.data<uint8_t>()[0] = 255;
  {
    app::TensorBoardWriter w(dir.str() + "/tf_logs");
    path = w.path();
    w.scalar("train/loss", 1.5, 10);
    w.scalar("train/loss", 0.25, 20);
    w.scalar("train/lr", 0.02, 20);
    w.image("val/predictions", picture, 20);
  }
  REQUIRE(test::tfevents_files(dir.str() + "/tf_logs") == std::vector<std::string>{path});
  const test::TfFile f = test::read_tfevents(path);
  REQUIRE(f.error.empty());
  CHECK(f.file_version == "brain.Event:2");
  REQUIRE(f.values.size() == 4);
  CHECK(f.values[0].tag == "train/loss");
  CHECK(f.values[0].step == 10);
  CHECK(f.values[0].value == 1.5);
  CHECK(f.values[1].value == 0.25);
  CHECK(f.values[2].tag == "train/lr");
  CHECK(f.values[2].value == Approx(0.02).epsilon(1e-7));  // stored as float
  CHECK(f.values[3].is_image);
  CHECK(f.values[3].width == 8);
  CHECK(f.values[3].height == 6);
  CHECK(f.values[3].png.substr(1, 3) == "PNG");

  if (!test::have_tensorboard()) {
    test::skip("the Python package 'tensorboard' is not importable (pip install tensorboard); TensorBoard's own "
               "reader was not run");
    return;
  }
  std::string log;
  const nlohmann::json j = test::tensorboard_read(path, &log);
  INFO(log);
  REQUIRE(j.is_object());
  CHECK(j["file_version"] == "brain.Event:2");
  CHECK(j["events"] == 5);
  REQUIRE(j["scalars"]["train/loss"].size() == 2);
  CHECK(j["scalars"]["train/loss"][0][0] == 10);
  CHECK(j["scalars"]["train/loss"][0][1].get<double>() == 1.5);
  CHECK(j["scalars"]["train/loss"][1][1].get<double>() == 0.25);
  REQUIRE(j["images"]["val/predictions"].size() == 1);
  CHECK(j["images"]["val/predictions"][0][1] == 8);
  CHECK(j["images"]["val/predictions"][0][2] == 6);
  CHECK(j["images"]["val/predictions"][0][4] == "89504e470d0a1a0a");  // the PNG signature
}

TEST_CASE("a corrupted event file is caught by the CRCs", "[apps][tensorboard]") {
  test::TempDir dir("tensorboard_bad");
  std::string path;
  {
    app::TensorBoardWriter w(dir.str());
    path = w.path();
    w.scalar("x", 3.0, 1);
  }
  {
    std::FILE* f = std::fopen(path.c_str(), "r+b");
    REQUIRE(f != nullptr);
    std::fseek(f, -6, SEEK_END);  // inside the float of the last record
    std::fputc(0x7f, f);
    std::fclose(f);
  }
  CHECK(test::read_tfevents(path).error.find("bad data CRC") != std::string::npos);
}
