// Peak memory of loading a COCO instances file of train2017's size and shape.
//
//   coco_memory generate PATH [--images 118287] [--annotations 860001] [--seed 1]
//       writes a synthetic instances file: train2017's numbers of images and annotations, one
//       polygon per annotation with 8-44 points (2 decimals, as COCO writes them), 80 categories,
//       COCO's image fields; about train2017's 448 MB
//   coco_memory load PATH --tree|--stream
//       --tree:   the old way, the whole text, then one nlohmann tree, then CocoInstances::parse
//       --stream: CocoInstances::load (data/coco_stream.cpp)
//       prints the peak resident set (getrusage ru_maxrss) of this process and the load time
//
// One load per process, so that each peak is its own. Results: bench/results/coco_memory.md.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "data/coco.h"
#include "tensor/random.h"

using namespace gndet;

namespace {

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

int generate(const std::string& path, int64_t images, int64_t annotations, uint64_t seed) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    return 1;
  }
  Generator gen(seed);
  std::fprintf(f, "{\"info\": {\"description\": \"synthetic COCO-shaped file (gndet bench/coco_memory)\"}, \"licenses\": [], \"images\": [");
  for (int64_t i = 0; i < images; ++i) {
    const int64_t w = 480 + gen.randint(0, 160), h = 360 + gen.randint(0, 280);
    std::fprintf(f,
                 "%s{\"license\": 3, \"file_name\": \"%012lld.jpg\", \"coco_url\": "
                 "\"http://images.cocodataset.org/train2017/%012lld.jpg\", \"height\": %lld, \"width\": %lld, "
                 "\"date_captured\": \"2013-11-14 16:28:13\", \"flickr_url\": "
                 "\"http://farm9.staticflickr.com/8186/%012lld_e8e9c5d85d_z.jpg\", \"id\": %lld}",
                 i ? ", " : "", static_cast<long long>(i + 1), static_cast<long long>(i + 1), static_cast<long long>(h),
                 static_cast<long long>(w), static_cast<long long>(i + 1), static_cast<long long>(i + 1));
  }
  std::fprintf(f, "], \"annotations\": [");
  for (int64_t a = 0; a < annotations; ++a) {
    const int64_t image = gen.randint(0, images) + 1;
    const int points = 8 + static_cast<int>(gen.randint(0, 37));
    const double cx = 50 + gen.uniform() * 380, cy = 50 + gen.uniform() * 260, r = 5 + gen.uniform() * 45;
    std::fprintf(f, "%s{\"segmentation\": [[", a ? ", " : "");
    double x0 = 1e9, y0 = 1e9, x1 = -1e9, y1 = -1e9;
    for (int p = 0; p < points; ++p) {
      const double t = 6.283185307179586 * p / points, rr = r * (0.6 + 0.4 * gen.uniform());
      const double x = static_cast<int64_t>((cx + rr * std::cos(t)) * 100) / 100.0;
      const double y = static_cast<int64_t>((cy + rr * std::sin(t)) * 100) / 100.0;
      x0 = std::min(x0, x), y0 = std::min(y0, y), x1 = std::max(x1, x), y1 = std::max(y1, y);
      std::fprintf(f, "%s%.2f, %.2f", p ? ", " : "", x, y);
    }
    std::fprintf(f,
                 "]], \"area\": %.4f, \"iscrowd\": 0, \"image_id\": %lld, \"bbox\": [%.2f, %.2f, %.2f, %.2f], "
                 "\"category_id\": %lld, \"id\": %lld}",
                 (x1 - x0) * (y1 - y0) * 0.7, static_cast<long long>(image), x0, y0, x1 - x0, y1 - y0,
                 static_cast<long long>(1 + gen.randint(0, 80)), static_cast<long long>(a + 1));
  }
  std::fprintf(f, "], \"categories\": [");
  for (int c = 1; c <= 80; ++c) {
    std::fprintf(f, "%s{\"supercategory\": \"thing\", \"id\": %d, \"name\": \"class_%d\"}", c > 1 ? ", " : "", c, c);
  }
  std::fprintf(f, "]}\n");
  const bool ok = std::fclose(f) == 0;
  std::printf("wrote %s: %lld images, %lld annotations\n", path.c_str(), static_cast<long long>(images),
              static_cast<long long>(annotations));
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 3 && std::strcmp(argv[1], "generate") == 0) {
      int64_t images = 118287, annotations = 860001;
      uint64_t seed = 1;
      for (int i = 3; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--images") == 0) images = std::stoll(argv[i + 1]);
        if (std::strcmp(argv[i], "--annotations") == 0) annotations = std::stoll(argv[i + 1]);
        if (std::strcmp(argv[i], "--seed") == 0) seed = std::stoull(argv[i + 1]);
      }
      return generate(argv[2], images, annotations, seed);
    }
    if (argc == 4 && std::strcmp(argv[1], "load") == 0) {
      const std::string mode = argv[3];
      const double before = peak_rss_mb();
      const auto t0 = std::chrono::steady_clock::now();
      size_t anns = 0, points = 0;
      auto count = [&](const data::CocoInstances& c) {
        anns = c.annotations().size();
        for (const auto& a : c.annotations()) {
          if (a.segmentation) {
            for (const auto& p : a.segmentation->polygons) points += p.size() / 2;
          }
        }
      };
      if (mode == "--tree") {
        const Json json = read_json_file(argv[2], "COCO annotation file");
        count(data::CocoInstances::parse(json, argv[2]));
      } else if (mode == "--stream") {
        count(data::CocoInstances::load(argv[2]));
      } else {
        std::fprintf(stderr, "load: --tree or --stream\n");
        return 2;
      }
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("%s: %zu annotations, %zu polygon points; peak RSS %.0f MB (%.0f MB before loading), %.1f s\n",
                  mode.c_str(), anns, points, peak_rss_mb(), before, s);
      return 0;
    }
    std::fprintf(stderr, "usage: coco_memory generate PATH [--images N] [--annotations N] | load PATH --tree|--stream\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "coco_memory: %s\n", e.what());
    return 1;
  }
}
