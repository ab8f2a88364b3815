// gndet make-shapes: writes the synthetic shapes dataset (PNG images + COCO annotations).
#include <chrono>
#include <cstdio>
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "data/shapes.h"

namespace gndet::app {
namespace {

int run_make_shapes(const Args& args) {
  ArgParser p("gndet make-shapes",
              "Writes a synthetic COCO-format dataset of squares, circles and triangles (category ids\n"
              "1, 2, 3): DIR/train/*.png, DIR/val/*.png, DIR/annotations/train.json and val.json.\n"
              "1-4 shapes per image, occlusion respected in the masks; the same seed gives the same files.");
  p.option("--out", "DIR", "output folder (created)")
      .option("--train", "N", "training images", "600")
      .option("--val", "M", "validation images", "100")
      .option("--size", "S", "image side in pixels", "128")
      .option("--seed", "K", "random seed", "0")
      .example("gndet make-shapes --out data/shapes --train 600 --val 100 --size 128 --seed 0");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  if (!p.has("--out")) throw UsageError("gndet make-shapes: --out DIR is required");
  data::ShapesOptions o;
  o.out_dir = p.get("--out");
  o.num_train = p.get_int("--train", 0, data::kMaxShapesImages);
  o.num_val = p.get_int("--val", 0, data::kMaxShapesImages);
  o.size = p.get_int("--size", 16, 4096);
  const int64_t seed = p.get_int("--seed", 0, INT64_MAX);
  o.seed = static_cast<uint64_t>(seed);
  const auto t0 = std::chrono::steady_clock::now();
  const data::ShapesSummary s = data::make_shapes_dataset(o);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("make-shapes: %lld train images (%lld instances), %lld val images (%lld instances) in %s (%.2f s)\n",
              static_cast<long long>(s.train_images), static_cast<long long>(s.train_instances),
              static_cast<long long>(s.val_images), static_cast<long long>(s.val_instances), o.out_dir.c_str(), secs);
  return 0;
}

}  // namespace

GNDET_COMMAND("make-shapes", "write the synthetic shapes dataset (PNG + COCO json)", run_make_shapes);

}  // namespace gndet::app
