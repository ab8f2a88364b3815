#include <algorithm>
#include <array>
#include <cmath>
#include <span>

#include "data/transforms.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::data;

namespace {

// An (h, w, 3) image whose channels hold row r = values (one row, three equal channels).
Tensor row_image(const std::vector<uint8_t>& values) {
  const int64_t w = static_cast<int64_t>(values.size());
  Tensor img = empty({1, w, 3}, kUInt8);
  for (int64_t x = 0; x < w; ++x) {
    for (int c = 0; c < 3; ++c) img.data<uint8_t>()[x * 3 + c] = values[static_cast<size_t>(x)];
  }
  return img;
}

std::vector<uint8_t> channel0(const Tensor& img) {
  std::vector<uint8_t> out;
  const std::vector<uint8_t> all = img.to_vector<uint8_t>();
  for (size_t i = 0; i < all.size(); i += 3) out.push_back(all[i]);
  return out;
}

Sample sample_with_box(int64_t h, int64_t w, std::array<float, 4> box) {
  Sample s = make_sample(zeros({h, w, 3}, kUInt8), true);
  s.gt_boxes = from_data<float>({box[0], box[1], box[2], box[3]}, {1, 4});
  s.gt_labels = from_data<int64_t>({0}, {1});
  s.gt_masks = zeros({1, h, w}, kUInt8);
  return s;
}

}  // namespace

TEST_CASE("Resize keep-ratio follows mmcv's rescale rule", "[data]") {
  const Resize r({1333, 800});
  // 480 x 640: s = min(1333 / 640, 800 / 480) = 5/3 -> (int(800 + .5), int(1066.67 + .5))
  CHECK(r.output_size(480, 640) == std::array<int64_t, 2>{800, 1067});
  // 100 x 1000: the long edge binds, s = 1.333 -> (int(133.3 + .5), 1333)
  CHECK(r.output_size(100, 1000) == std::array<int64_t, 2>{133, 1333});
  // portrait 800 x 600: s = min(1333 / 800, 800 / 600) = 4/3 -> (int(1066.67 + .5), 800)
  CHECK(r.output_size(800, 600) == std::array<int64_t, 2>{1067, 800});
  CHECK(Resize({1333, 800}, false).output_size(480, 640) == std::array<int64_t, 2>{800, 1333});  // scale = (w, h)
}

TEST_CASE("Resize: bilinear with cv2's half-pixel centres, nearest masks, scaled and clipped boxes", "[data]") {
  Generator rng(0);
  // Upsampling 2 -> 4: source x = (x' + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25; the ends clamp.
  Sample up = make_sample(row_image({0, 100}), false);
  Resize({4, 1}, false).apply(up, rng);
  CHECK(channel0(up.image) == std::vector<uint8_t>{0, 25, 75, 100});
  // Downsampling 4 -> 2: source x = 0.5, 2.5 -> averages of neighbours.
  Sample down = make_sample(row_image({0, 100, 200, 250}), false);
  Resize({2, 1}, false).apply(down, rng);
  CHECK(channel0(down.image) == std::vector<uint8_t>{50, 225});

  Sample s = sample_with_box(10, 20, {2, 3, 21, 9});  // x2 = 21 lies outside the 20-wide image
  uint8_t* m = s.gt_masks.data<uint8_t>();
  for (int64_t x = 0; x < 20; ++x) m[4 * 20 + x] = static_cast<uint8_t>(x % 2);  // stripes on row 4
  Resize({40, 5}, false).apply(s, rng);                                          // to 5 x 40: x factor 2, y factor 0.5
  CHECK(s.image.shape() == Shape{5, 40, 3});
  REQUIRE(s.gt_masks.shape() == Shape{1, 5, 40});
  // nearest (cv2 INTER_NEAREST): output (y, x) samples input (floor(2 y), floor(x / 2))
  const std::vector<uint8_t> mv = s.gt_masks.to_vector<uint8_t>();
  for (int64_t y = 0; y < 5; ++y) {
    for (int64_t x = 0; x < 40; ++x) {
      CHECK(mv[static_cast<size_t>(y * 40 + x)] == (y == 2 ? (x / 2) % 2 : 0));
    }
  }
  // boxes times (2, 0.5), clipped to the 40 x 5 image
  CHECK(s.gt_boxes.to_vector<float>() == std::vector<float>{4, 1.5f, 40, 4.5f});
  CHECK(s.meta.img_shape == std::array<int64_t, 2>{5, 40});
  CHECK(s.meta.pad_shape == std::array<int64_t, 2>{5, 40});
  CHECK(s.meta.ori_shape == std::array<int64_t, 2>{10, 20});
  CHECK(s.meta.scale_factor == std::array<double, 2>{2.0, 0.5});
  // Resize needs the uint8 image
  Sample f = make_sample(zeros({4, 4, 3}, kFloat32), false);
  CHECK_THROWS_WITH(Resize({8, 8}).apply(f, rng), Catch::Contains("Resize: expected the uint8 image"));
}

// The bilinear resize written plainly: every output row interpolates its two source rows afresh.
// Resize keeps the last two interpolated rows for the next output row; it must give the same bits.
std::vector<uint8_t> plain_bilinear(const Tensor& image, int64_t out_h, int64_t out_w) {
  const int64_t H = image.size(0), W = image.size(1), C = image.size(2);
  const std::vector<uint8_t> in = image.to_vector<uint8_t>();
  auto taps = [](int64_t src, int64_t dst) {
    std::vector<std::array<int64_t, 4>> t(static_cast<size_t>(dst));  // i0, i1, w0, w1
    for (int64_t d = 0; d < dst; ++d) {
      float f = static_cast<float>((static_cast<double>(d) + 0.5) * (1.0 / (static_cast<double>(dst) / src)) - 0.5);
      int64_t i = static_cast<int64_t>(std::floor(f));
      f -= static_cast<float>(i);
      if (i < 0) f = 0, i = 0;
      if (i >= src - 1) f = 0, i = src - 1;
      t[static_cast<size_t>(d)] = {i, std::min(i + 1, src - 1), std::lrint((1.0f - f) * 2048.0f), std::lrint(f * 2048.0f)};
    }
    return t;
  };
  const auto xs = taps(W, out_w), ys = taps(H, out_h);
  std::vector<uint8_t> out(static_cast<size_t>(out_h * out_w * C));
  for (int64_t y = 0; y < out_h; ++y) {
    const auto& ty = ys[static_cast<size_t>(y)];
    for (int64_t x = 0; x < out_w; ++x) {
      const auto& tx = xs[static_cast<size_t>(x)];
      for (int64_t c = 0; c < C; ++c) {
        auto row = [&](int64_t sy) {
          return static_cast<int32_t>(in[static_cast<size_t>((sy * W + tx[0]) * C + c)] * tx[2] +
                                      in[static_cast<size_t>((sy * W + tx[1]) * C + c)] * tx[3]);
        };
        const int32_t v = (((row(ty[0]) >> 4) * static_cast<int32_t>(ty[2])) >> 16) +
                          (((row(ty[1]) >> 4) * static_cast<int32_t>(ty[3])) >> 16);
        out[static_cast<size_t>((y * out_w + x) * C + c)] = static_cast<uint8_t>(std::clamp((v + 2) >> 2, 0, 255));
      }
    }
  }
  return out;
}

TEST_CASE("Resize: reusing interpolated rows gives the plain bilinear result bit for bit", "[data]") {
  Generator gen(5);
  struct Case {
    int64_t H, W, C, h, w;
  };
  // enlarging (rows shared by many outputs), shrinking (rows skipped), both, and thin extremes
  for (const Case& c : {Case{48, 64, 3, 80, 107}, Case{80, 107, 3, 30, 41}, Case{37, 23, 3, 20, 50}, Case{9, 13, 3, 31, 7}, Case{2, 5, 3, 1, 9}}) {
    CAPTURE(c.H, c.W, c.C, c.h, c.w);
    Tensor img = empty({c.H, c.W, c.C}, kUInt8);
    for (uint8_t& v : std::span(img.data<uint8_t>(), static_cast<size_t>(img.numel()))) v = static_cast<uint8_t>(gen.randint(0, 256));
    Sample s = make_sample(img, false);
    Generator rng(0);
    Resize({c.w, c.h}, false).apply(s, rng);
    REQUIRE(s.image.shape() == Shape{c.h, c.w, c.C});
    CHECK(s.image.to_vector<uint8_t>() == plain_bilinear(img, c.h, c.w));
  }
}

TEST_CASE("RandomFlip mirrors image, boxes (x1' = W - x2) and masks with the given probability", "[data]") {
  Sample s = sample_with_box(2, 10, {1, 0, 4, 2});
  s.image = row_image({0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  s.gt_masks = zeros({1, 1, 10}, kUInt8);
  s.gt_masks.data<uint8_t>()[1] = 1;
  Generator rng(3);
  RandomFlip(1.0).apply(s, rng);
  CHECK(channel0(s.image) == std::vector<uint8_t>{9, 8, 7, 6, 5, 4, 3, 2, 1, 0});
  CHECK(s.gt_boxes.to_vector<float>() == std::vector<float>{6, 0, 9, 2});
  CHECK(s.gt_masks.to_vector<uint8_t>() == std::vector<uint8_t>{0, 0, 0, 0, 0, 0, 0, 0, 1, 0});
  CHECK(s.meta.flip);
  RandomFlip(0.0).apply(s, rng);
  CHECK(s.meta.flip);  // prob 0 never flips
  // prob 0.5: the decision is one uniform draw, so a seeded generator repeats it
  int flips = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    Sample a = sample_with_box(2, 10, {1, 0, 4, 2}), b = sample_with_box(2, 10, {1, 0, 4, 2});
    Generator ga(seed), gb(seed);
    RandomFlip(0.5).apply(a, ga);
    RandomFlip(0.5).apply(b, gb);
    REQUIRE(a.meta.flip == b.meta.flip);
    flips += a.meta.flip;
  }
  CHECK(flips > 140);  // binomial(400, 0.5): mean 200, std 10; 6 std either side
  CHECK(flips < 260);
}

TEST_CASE("Normalize: (x - mean) / std per channel, channels reversed for BGR networks", "[data]") {
  Generator rng(0);
  Sample s = make_sample(empty({1, 1, 3}, kUInt8), false);
  s.image.data<uint8_t>()[0] = 10;  // R
  s.image.data<uint8_t>()[1] = 20;  // G
  s.image.data<uint8_t>()[2] = 30;  // B
  Sample bgr = s;
  Normalize({1, 2, 3}, {2, 4, 8}, true).apply(s, rng);
  CHECK(s.image.dtype() == kFloat32);
  // float32 arithmetic as mmcv: (x - mean) * (1 / std); these values are exact in float
  CHECK(s.image.to_vector<float>() == std::vector<float>{4.5f, 4.5f, 3.375f});
  Normalize({103.53, 116.28, 123.675}, {1, 1, 1}, false).apply(bgr, rng);
  const std::vector<float> v = bgr.image.to_vector<float>();
  // channel 0 is now B = 30 minus the B mean; exact up to float32 rounding of the mean
  CHECK(v[0] == static_cast<float>(30 - static_cast<float>(103.53)));
  CHECK(v[2] == static_cast<float>(10 - static_cast<float>(123.675)));
}

TEST_CASE("Pad rounds up to the size divisor with zeros and records pad_shape", "[data]") {
  Generator rng(0);
  Sample s = sample_with_box(33, 64, {0, 0, 5, 5});
  s.image.fill_(7);
  s.gt_masks.fill_(1);
  Pad(32).apply(s, rng);
  CHECK(s.image.shape() == Shape{64, 64, 3});
  CHECK(s.gt_masks.shape() == Shape{1, 64, 64});
  CHECK(s.meta.pad_shape == std::array<int64_t, 2>{64, 64});
  CHECK(s.meta.img_shape == std::array<int64_t, 2>{33, 64});
  const std::vector<uint8_t> img = s.image.to_vector<uint8_t>();
  CHECK(img[(32 * 64 + 63) * 3] == 7);  // last real row
  CHECK(img[(33 * 64) * 3] == 0);       // first padded row
  CHECK(s.gt_masks.to_vector<uint8_t>()[40 * 64] == 0);
}

TEST_CASE("pipeline configs: mmdetection 2.x and 3.x spellings, clear errors for the rest", "[data]") {
  const Json v2 = Json::parse(R"([
      {"type": "LoadImageFromFile"}, {"type": "LoadAnnotations", "with_bbox": true, "with_mask": true},
      {"type": "Resize", "img_scale": [[1333, 800]], "keep_ratio": true}, {"type": "RandomFlip", "flip_ratio": 0.5},
      {"type": "Normalize", "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "to_rgb": true},
      {"type": "Pad", "size_divisor": 32}, {"type": "DefaultFormatBundle"},
      {"type": "Collect", "keys": ["img", "gt_bboxes", "gt_labels", "gt_masks"]}])");
  const Pipeline p2 = Pipeline::from_json(v2, "v2.json");
  REQUIRE(p2.steps().size() == 4);
  CHECK(p2.steps()[0]->name() == "Resize");
  CHECK(p2.steps()[3]->name() == "Pad");
  CHECK(p2.with_mask());
  const Json v3 = Json::parse(R"([
      {"type": "LoadImageFromFile", "backend_args": null}, {"type": "LoadAnnotations", "with_bbox": true},
      {"type": "Resize", "scale": [1333, 800], "keep_ratio": true}, {"type": "RandomFlip", "prob": 0.5},
      {"type": "PackDetInputs"}])");
  const Pipeline p3 = Pipeline::from_json(v3, "v3.json");
  CHECK(p3.steps().size() == 2);
  CHECK(p3.has_load_annotations());
  CHECK(!p3.with_mask());  // mmdetection's default
  const Json test = Json::parse(R"([{"type": "LoadImageFromFile"},
      {"type": "MultiScaleFlipAug", "img_scale": [1333, 800], "flip": false,
       "transforms": [{"type": "Resize", "keep_ratio": true}, {"type": "RandomFlip"},
                      {"type": "Normalize", "mean": [0, 0, 0], "std": [1, 1, 1]}, {"type": "Pad", "size_divisor": 32},
                      {"type": "ImageToTensor", "keys": ["img"]}, {"type": "Collect", "keys": ["img"]}]}])");
  CHECK_THROWS_WITH(Pipeline::from_json(test, "test.json"), Catch::Contains("RandomFlip needs exactly one of prob"));
  const auto pre = data_preprocessor_transforms(
      Json::parse(R"({"type": "DetDataPreprocessor", "mean": [103.53, 116.28, 123.675], "std": [1, 1, 1],
                     "bgr_to_rgb": false, "pad_size_divisor": 32})"),
      "model.json");
  REQUIRE(pre.size() == 2);
  CHECK(pre[0]->name() == "Normalize");

  auto error_of = [](const char* text) {
    try {
      Pipeline::from_json(Json::parse(text), "cfg.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of(R"([{"type": "Resize", "scale": [1333, 800]}, {"type": "Mosaic"}])"),
             Catch::Contains("cfg.json: pipeline[1].type: unknown transform type"));
  CHECK_THAT(error_of(R"([{"type": "RandomFlip", "flip_prob": 0.5}])"),
             Catch::Contains("pipeline[0]: unknown argument 'flip_prob' for RandomFlip"));
  CHECK_THAT(error_of(R"([{"type": "RandomFlip", "prob": 1.5}])"),
             Catch::Contains("pipeline[0].prob: expected a probability"));
  CHECK_THAT(error_of(R"([{"type": "Resize", "scale": [[1333, 640], [1333, 800]]}])"),
             Catch::Contains("multi-scale resizing is not supported"));
  CHECK_THAT(error_of(R"([{"type": "Normalize", "mean": [1, 2], "std": [1, 1, 1]}])"),
             Catch::Contains("pipeline[0].mean: expected 3 numbers"));
  CHECK_THAT(error_of(R"([{"type": "Pad", "size_divisor": 0}])"),
             Catch::Contains("pipeline[0].size_divisor: expected a positive divisor"));
  CHECK_THAT(error_of(R"({"type": "Pad"})"), Catch::Contains("cfg.json: pipeline: expected a list of transforms"));
  CHECK_THAT(error_of(R"([{"scale": [1, 2]}])"), Catch::Contains("pipeline[0].type: missing required field"));
}

TEST_CASE("a full training pipeline keeps boxes, masks and metadata consistent", "[data]") {
  const Pipeline p = Pipeline::from_json(Json::parse(R"([
      {"type": "Resize", "scale": [100, 60], "keep_ratio": true}, {"type": "RandomFlip", "prob": 1.0},
      {"type": "Normalize", "mean": [0, 0, 0], "std": [1, 1, 1], "to_rgb": true}, {"type": "Pad", "size_divisor": 32}])"));
  Sample s = sample_with_box(30, 40, {4, 6, 20, 16});
  uint8_t* m = s.gt_masks.data<uint8_t>();
  for (int64_t y = 6; y < 16; ++y) {
    for (int64_t x = 4; x < 20; ++x) m[y * 40 + x] = 1;
  }
  Generator rng(1);
  p.apply(s, rng);
  // 30 x 40 -> s = min(100 / 40, 60 / 30) = 2 -> 60 x 80, flipped, padded to 64 x 96
  CHECK(s.meta.img_shape == std::array<int64_t, 2>{60, 80});
  CHECK(s.meta.pad_shape == std::array<int64_t, 2>{64, 96});
  CHECK(s.meta.flip);
  CHECK(s.image.shape() == Shape{64, 96, 3});
  CHECK(s.image.dtype() == kFloat32);
  CHECK(s.gt_masks.shape() == Shape{1, 64, 96});
  // the box (4, 6, 20, 16) * 2, mirrored in the 80-wide image: x1' = 80 - 40, x2' = 80 - 8
  CHECK(s.gt_boxes.to_vector<float>() == std::vector<float>{40, 12, 72, 32});
  // and the mask fills exactly that box
  const std::vector<uint8_t> mv = s.gt_masks.to_vector<uint8_t>();
  int64_t inside = 0, total = 0;
  for (int64_t y = 0; y < 64; ++y) {
    for (int64_t x = 0; x < 96; ++x) {
      const bool in_box = x >= 40 && x < 72 && y >= 12 && y < 32;
      inside += in_box && mv[static_cast<size_t>(y * 96 + x)];
      total += mv[static_cast<size_t>(y * 96 + x)];
    }
  }
  CHECK(inside == 32 * 20);
  CHECK(total == 32 * 20);
}
