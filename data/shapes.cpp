#include "data/shapes.h"

#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numbers>

#include "data/image.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"

namespace gndet::data {
namespace {

using Rgb = std::array<int, 3>;

constexpr double kMinVisibleFraction = 0.3;
constexpr int kPlacementTries = 20;
constexpr int kCircleVertices = 32;

uint64_t image_seed(uint64_t seed, int split, int64_t index) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(split) * 0xC2B2AE3D27D4EB4Full +
               static_cast<uint64_t>(index) * 0x165667B19E3779F9ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

int distance(const Rgb& a, const Rgb& b) {
  return std::abs(a[0] - b[0]) + std::abs(a[1] - b[1]) + std::abs(a[2] - b[2]);
}

Rgb random_colour(Generator& g) {
  return {static_cast<int>(g.randint(0, 256)), static_cast<int>(g.randint(0, 256)),
          static_cast<int>(g.randint(0, 256))};
}

// Outline of a shape of class `category` (1 square, 2 circle, 3 triangle) with extent `s` at (x, y).
std::vector<double> outline(int64_t category, double x, double y, double s) {
  if (category == 1) return {x, y, x + s, y, x + s, y + s, x, y + s};
  if (category == 2) {
    std::vector<double> p;
    const double r = s / 2, cx = x + r, cy = y + r;
    for (int i = 0; i < kCircleVertices; ++i) {
      const double a = 2 * std::numbers::pi * i / kCircleVertices;
      p.push_back(std::round((cx + r * std::cos(a)) * 100) / 100);  // two decimals keep the JSON short
      p.push_back(std::round((cy + r * std::sin(a)) * 100) / 100);
    }
    return p;
  }
  const double h = std::round(s * 0.866 * 100) / 100;  // equilateral height, pointing up
  return {x + s / 2, y, x + s, y + h, x, y + h};
}

}  // namespace

const std::vector<CocoCategory>& shapes_categories() {
  static const std::vector<CocoCategory> cats = {{1, "square"}, {2, "circle"}, {3, "triangle"}};
  return cats;
}

ShapesImage render_shapes_image(uint64_t seed, int split, int64_t index, int64_t size) {
  GNDET_CHECK(size >= 16, "shapes: image size must be at least 16 pixels, got ", size);
  Generator g(image_seed(seed, split, index));
  const int64_t S = size, n_pixels = S * S;
  const Rgb top = random_colour(g);
  Rgb bottom;
  do {
    bottom = random_colour(g);
  } while (distance(top, bottom) > 60);  // a gentle gradient: the shapes, not the background, carry the edges

  struct Instance {
    int64_t category;
    std::vector<double> polygon;
    std::vector<uint8_t> full, visible;  // row-major S x S
    int64_t full_area = 0, visible_area = 0;
    Rgb colour;
  };
  std::vector<Instance> placed;
  const int64_t wanted = g.randint(1, 5);
  const double min_size = static_cast<double>(S) / 8, max_size = static_cast<double>(S) / 2.5;
  for (int64_t n = 0; n < wanted; ++n) {
    const int64_t category = g.randint(1, 4);
    Rgb colour;
    for (int tries = 0;; ++tries) {
      colour = random_colour(g);
      bool ok = distance(colour, top) >= 180 && distance(colour, bottom) >= 180;
      for (const Instance& other : placed) ok = ok && distance(colour, other.colour) >= 90;
      if (ok || tries > 200) break;
    }
    for (int attempt = 0; attempt < kPlacementTries; ++attempt) {
      const double s = std::round((min_size + g.uniform() * (max_size - min_size)) * 100) / 100;
      const double x = std::round(g.uniform() * (static_cast<double>(S) - s) * 100) / 100;
      const double y = std::round(g.uniform() * (static_cast<double>(S) - s) * 100) / 100;
      Instance inst{category, outline(category, x, y, s), {}, {}, 0, 0, colour};
      const Rle rle = rle_from_polygon(inst.polygon, S, S);
      inst.full.resize(static_cast<size_t>(n_pixels));
      rle_decode(rle, inst.full.data());
      inst.full_area = rle_area(rle);
      if (inst.full_area == 0) continue;
      bool fits = true;
      for (const Instance& other : placed) {
        int64_t still_visible = 0;
        for (int64_t p = 0; p < n_pixels; ++p) still_visible += other.visible[p] && !inst.full[p];
        fits = fits && static_cast<double>(still_visible) >= kMinVisibleFraction * static_cast<double>(other.full_area);
      }
      if (!fits) continue;
      for (Instance& other : placed) {
        other.visible_area = 0;
        for (int64_t p = 0; p < n_pixels; ++p) {
          other.visible[p] = other.visible[p] && !inst.full[p];
          other.visible_area += other.visible[p];
        }
      }
      inst.visible = inst.full;
      inst.visible_area = inst.full_area;
      placed.push_back(std::move(inst));
      break;
    }
  }

  ShapesImage out;
  out.image = empty({S, S, 3}, kUInt8);
  uint8_t* px = out.image.data<uint8_t>();
  for (int64_t y = 0; y < S; ++y) {
    const double t = static_cast<double>(y) / static_cast<double>(S - 1);
    for (int64_t x = 0; x < S; ++x) {
      for (int c = 0; c < 3; ++c) {
        px[(y * S + x) * 3 + c] = static_cast<uint8_t>(std::lround(top[c] + t * (bottom[c] - top[c])));
      }
    }
  }
  for (const Instance& inst : placed) {
    for (int64_t p = 0; p < n_pixels; ++p) {
      if (!inst.full[p]) continue;
      for (int c = 0; c < 3; ++c) px[p * 3 + c] = static_cast<uint8_t>(inst.colour[c]);
    }
  }
  for (const Instance& inst : placed) {
    CocoAnnotation ann;
    ann.category_id = inst.category;
    const Rle visible = rle_encode(inst.visible.data(), S, S);
    ann.bbox = rle_to_box(visible);
    ann.area = static_cast<double>(rle_area(visible));
    Segmentation seg;
    if (inst.visible_area == inst.full_area) {
      seg.kind = Segmentation::Kind::Polygons;
      seg.polygons = {inst.polygon};
    } else {
      seg = Segmentation::from_rle(visible);
    }
    ann.segmentation = std::move(seg);
    out.annotations.push_back(std::move(ann));
  }
  return out;
}

ShapesSummary make_shapes_dataset(const ShapesOptions& o) {
  GNDET_CHECK(!o.out_dir.empty(), "make-shapes: no output folder given");
  GNDET_CHECK(o.num_train >= 0 && o.num_val >= 0 && o.num_train <= kMaxShapesImages && o.num_val <= kMaxShapesImages,
              "make-shapes: image counts must be in 0..", kMaxShapesImages, ", got ", o.num_train, " and ", o.num_val);
  GNDET_CHECK(o.size >= 16 && o.size <= 4096, "make-shapes: --size must be in 16..4096, got ", o.size);
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const char* sub : {"train", "val", "annotations"}) {
    fs::create_directories(fs::path(o.out_dir) / sub, ec);
    GNDET_CHECK(!ec, "make-shapes: cannot create '", (fs::path(o.out_dir) / sub).string(), "': ", ec.message());
  }
  ShapesSummary summary;
  const char* names[2] = {"train", "val"};
  const int64_t counts[2] = {o.num_train, o.num_val};
  for (int split = 0; split < 2; ++split) {
    const int64_t n = counts[split];
    Json json = Json::object();
    json["info"] = {{"description", "gndet synthetic shapes"}, {"seed", o.seed}, {"size", o.size}};
    json["images"] = Json::array();
    json["annotations"] = Json::array();
    json["categories"] = Json::array();
    for (const CocoCategory& c : shapes_categories()) {
      json["categories"].push_back({{"id", c.id}, {"name", c.name}, {"supercategory", "shape"}});
    }
    int64_t ann_id = 1;
    // Rendered a chunk at a time, so memory holds one chunk of images, not the whole split.
    constexpr int64_t kChunk = 256;
    for (int64_t first = 0; first < n; first += kChunk) {
      const int64_t count = std::min(kChunk, n - first);
      std::vector<ShapesImage> images(static_cast<size_t>(count));
      std::string error;
#pragma omp parallel for schedule(dynamic, 8)
      for (int64_t k = 0; k < count; ++k) {
        const int64_t i = first + k;
        try {
          ShapesImage img = render_shapes_image(o.seed, split, i, o.size);
          char file[32];
          std::snprintf(file, sizeof file, "%06lld.png", static_cast<long long>(i + 1));
          write_png((fs::path(o.out_dir) / names[split] / file).string(), img.image);
          img.image = Tensor();  // the pixels are on disk; keep only the annotations
          images[static_cast<size_t>(k)] = std::move(img);
        } catch (const std::exception& e) {
#pragma omp critical(gndet_shapes_error)
          if (error.empty()) error = e.what();
        }
      }
      GNDET_CHECK(error.empty(), "make-shapes: ", error);
      for (int64_t k = 0; k < count; ++k) {
        const int64_t i = first + k;
        char file[32];
        std::snprintf(file, sizeof file, "%06lld.png", static_cast<long long>(i + 1));
        json["images"].push_back({{"id", i + 1}, {"file_name", file}, {"width", o.size}, {"height", o.size}});
        for (const CocoAnnotation& a : images[static_cast<size_t>(k)].annotations) {
          json["annotations"].push_back({{"id", ann_id++},
                                         {"image_id", i + 1},
                                         {"category_id", a.category_id},
                                         {"bbox", {a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]}},
                                         {"area", a.area},
                                         {"iscrowd", 0},
                                         {"segmentation", segmentation_to_json(*a.segmentation)}});
        }
      }
    }
    write_file_atomic((fs::path(o.out_dir) / "annotations" / (std::string(names[split]) + ".json")).string(),
                      json.dump());
    (split == 0 ? summary.train_images : summary.val_images) = n;
    (split == 0 ? summary.train_instances : summary.val_instances) = ann_id - 1;
  }
  return summary;
}

}  // namespace gndet::data
