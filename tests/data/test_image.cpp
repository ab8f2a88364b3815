#include <filesystem>
#include <fstream>

#include "data/image.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::data;

namespace {

std::string temp_dir(const std::string& name) {
  const std::string dir = std::filesystem::temp_directory_path() / ("gndet_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}

// A smooth test picture (JPEG-friendly): channel c at (y, x) = 40 * c + 2 * x + y.
Tensor gradient_image(int64_t h, int64_t w) {
  Tensor img = empty({h, w, 3}, kUInt8);
  uint8_t* p = img.data<uint8_t>();
  for (int64_t y = 0; y < h; ++y) {
    for (int64_t x = 0; x < w; ++x) {
      for (int64_t c = 0; c < 3; ++c) p[(y * w + x) * 3 + c] = static_cast<uint8_t>(40 * c + 2 * x + y);
    }
  }
  return img;
}

}  // namespace

TEST_CASE("PNG images round-trip exactly as (H, W, 3) uint8 RGB", "[data]") {
  const std::string dir = temp_dir("png");
  Generator gen(1);
  const Tensor img = randint(0, 256, {13, 21, 3}, gen, kUInt8);
  write_png(dir + "/a.png", img);
  const Tensor back = read_image(dir + "/a.png");
  CHECK(back.shape() == Shape{13, 21, 3});
  CHECK(back.dtype() == kUInt8);
  CHECK(back.to_vector<uint8_t>() == img.to_vector<uint8_t>());
  const ImageSize size = read_image_size(dir + "/a.png");
  CHECK(size.height == 13);
  CHECK(size.width == 21);
  // no temporary file is left next to the output
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir)) ++files;
  CHECK(files == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("grey images are expanded to RGB and JPEGs decode close to the original", "[data]") {
  Generator gen(2);
  const Tensor grey = randint(0, 256, {5, 7}, gen, kUInt8);
  const Tensor rgb = decode_image(encode_png(grey), "grey.png");
  REQUIRE(rgb.shape() == Shape{5, 7, 3});
  const std::vector<uint8_t> g = grey.to_vector<uint8_t>(), c = rgb.to_vector<uint8_t>();
  for (size_t i = 0; i < g.size(); ++i) {
    CHECK(c[i * 3] == g[i]);
    CHECK(c[i * 3 + 1] == g[i]);
    CHECK(c[i * 3 + 2] == g[i]);
  }
  const Tensor img = gradient_image(32, 48);
  const Tensor jpg = decode_image(encode_jpeg(img, 95), "gradient.jpg");
  REQUIRE(jpg.shape() == img.shape());
  // JPEG is lossy: a smooth gradient at quality 95 stays within a few grey levels on average;
  // a channel swap or a transposition would be off by tens.
  double err = 0;
  const std::vector<uint8_t> a = img.to_vector<uint8_t>(), b = jpg.to_vector<uint8_t>();
  for (size_t i = 0; i < a.size(); ++i) err += std::abs(static_cast<double>(a[i]) - b[i]);
  CHECK(err / static_cast<double>(a.size()) < 3.0);
}

TEST_CASE("corrupt, truncated and missing images give an error naming the file and the reason", "[data]") {
  const std::string dir = temp_dir("badimg");
  const std::string png = encode_png(gradient_image(16, 16));
  write_file_atomic(dir + "/truncated.png", png.substr(0, png.size() / 2));
  write_file_atomic(dir + "/garbage.jpg", std::string(200, 'x'));
  write_file_atomic(dir + "/empty.png", "");
  CHECK_THROWS_WITH(read_image(dir + "/truncated.png"),
                    Catch::Contains("cannot decode image '" + dir + "/truncated.png'"));
  CHECK_THROWS_WITH(read_image(dir + "/garbage.jpg"),
                    Catch::Contains("garbage.jpg") && Catch::Contains("unknown image type"));
  CHECK_THROWS_WITH(read_image(dir + "/empty.png"), Catch::Contains("empty.png") && Catch::Contains("empty"));
  CHECK_THROWS_WITH(read_image(dir + "/missing.png"),
                    Catch::Contains("cannot open image") && Catch::Contains("missing.png"));
  CHECK_THROWS_AS(read_image(dir + "/truncated.png"), Error);
  CHECK_THROWS_WITH(encode_png(zeros({4, 4, 3}, kFloat32)), Catch::Contains("uint8"));
  std::filesystem::remove_all(dir);
}
