// The training data pipeline on one core: read + decode a JPEG, resize to 1333 x 800 (keep ratio),
// random flip, normalise, pad to a multiple of 32 (mmdetection's train pipeline for the zoo,
// without annotations), in images/s, stage by stage. bench/mmdet_data_pipeline.py times
// mmdetection 3.3's own pipeline (OpenCV decode and resize, DetDataPreprocessor) on the same
// files; bench/data_pipeline.sh runs both and prints the ratio.
//
//   data_pipeline [--dir DIR] [--images 32] [--rounds 3]
//
// DIR/img_NN.jpg are made when absent: COCO-like 640 x 480 JPEGs of quality 90 (stb's encoder),
// smooth colour gradients with 12 random filled shapes and +-8 of pixel noise, seeded. One thread
// (OpenMP off): what one data-loader worker does. Best of --rounds passes over the images.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/transforms.h"
#include "tensor/factory.h"
#include "tensor/random.h"

using namespace gndet;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// A 480 x 640 RGB picture with edges and texture, so that JPEG decoding does typical work.
Tensor synthetic_photo(Generator& gen) {
  const int64_t H = 480, W = 640;
  Tensor img = empty({H, W, 3}, kUInt8);
  uint8_t* p = img.data<uint8_t>();
  double base[3], gx[3], gy[3];
  for (int c = 0; c < 3; ++c) base[c] = 40 + 120 * gen.uniform(), gx[c] = 80 * (gen.uniform() - 0.5), gy[c] = 80 * (gen.uniform() - 0.5);
  std::vector<double> v(static_cast<size_t>(H * W * 3));
  for (int64_t y = 0; y < H; ++y) {
    for (int64_t x = 0; x < W; ++x) {
      for (int c = 0; c < 3; ++c) v[(y * W + x) * 3 + c] = base[c] + gx[c] * x / W + gy[c] * y / H;
    }
  }
  for (int s = 0; s < 12; ++s) {  // rectangles and discs of random colours
    const double cx = W * gen.uniform(), cy = H * gen.uniform(), r = 20 + 100 * gen.uniform();
    const bool disc = gen.uniform() < 0.5;
    double colour[3];
    for (double& c : colour) c = 255 * gen.uniform();
    for (int64_t y = std::max<int64_t>(0, cy - r); y < std::min<int64_t>(H, cy + r); ++y) {
      for (int64_t x = std::max<int64_t>(0, cx - r); x < std::min<int64_t>(W, cx + r); ++x) {
        if (disc && (x - cx) * (x - cx) + (y - cy) * (y - cy) > r * r) continue;
        for (int c = 0; c < 3; ++c) v[(y * W + x) * 3 + c] = colour[c];
      }
    }
  }
  for (size_t i = 0; i < v.size(); ++i) p[i] = static_cast<uint8_t>(std::clamp(v[i] + 16 * (gen.uniform() - 0.5), 0.0, 255.0));
  return img;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "/tmp/gndet_pipeline_images";
  int images = 32, rounds = 3;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--dir") dir = v;
    else if (k == "--images") images = std::stoi(v);
    else if (k == "--rounds") rounds = std::stoi(v);
    else return std::fprintf(stderr, "data_pipeline: unknown option %s\n", k.c_str()), 2;
  }
  omp_set_num_threads(1);
  std::filesystem::create_directories(dir);
  std::vector<std::string> paths;
  Generator gen(0);
  for (int i = 0; i < images; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "/img_%02d.jpg", i);
    paths.push_back(dir + name);
    const Tensor photo = synthetic_photo(gen);  // drawn even when the file exists: same files every time
    if (!std::filesystem::exists(paths.back())) std::ofstream(paths.back(), std::ios::binary) << data::encode_jpeg(photo, 90);
  }

  const data::Resize resize({1333, 800}, true);
  const data::RandomFlip flip(0.5);
  const data::Normalize normalize({123.675, 116.28, 103.53}, {58.395, 57.12, 57.375}, true);
  const data::Pad pad(32);
  const char* stages[] = {"read + decode (stb_image)", "resize to 1333 x 800", "random flip", "normalise", "pad to /32"};
  std::vector<double> best(5, 1e30);
  double best_total = 1e30;
  for (int r = 0; r < rounds; ++r) {
    Generator rng(1);
    std::vector<double> t(5, 0.0);
    const double start = now_s();
    for (const std::string& path : paths) {
      double t0 = now_s();
      data::Sample s = data::make_sample(data::read_image(path), false);
      double t1 = now_s();
      t[0] += t1 - t0;
      const data::Transform* steps[] = {&resize, &flip, &normalize, &pad};
      for (int k = 0; k < 4; ++k) {
        steps[k]->apply(s, rng);
        t0 = t1, t1 = now_s();
        t[k + 1] += t1 - t0;
      }
    }
    best_total = std::min(best_total, now_s() - start);
    for (int k = 0; k < 5; ++k) best[k] = std::min(best[k], t[k]);
  }
  std::printf("gndet data pipeline, 1 thread, %d JPEGs 640x480 q90 in %s, best of %d passes\n", images, dir.c_str(), rounds);
  for (int k = 0; k < 5; ++k) std::printf("  %-28s %7.2f ms/image\n", stages[k], 1e3 * best[k] / images);
  std::printf("  %-28s %7.2f ms/image = %.1f images/s per core\n", "total", 1e3 * best_total / images, images / best_total);
  std::printf("RESULT data_pipeline images_per_s=%.3f\n", images / best_total);
  return 0;
}
