// The synthetic "shapes" dataset of the demo and the end-to-end tests: S x S PNG images holding
// 1-4 squares, circles and triangles (COCO category ids 1, 2, 3) in random colours on a random
// background gradient, with COCO instance annotations.
//
// Rules:
//  - Object sizes (square side, circle diameter, triangle width) are drawn uniformly in
//    [S/8, S/2.5]; shapes lie fully inside the image and may overlap.
//  - Colours contrast with the background (L1 distance >= 180 from both gradient ends) and with
//    the earlier shapes (>= 90), so that every visible edge is a real edge.
//  - Shapes are painted in order, a later one hiding an earlier one. A shape is placed only where
//    every earlier instance keeps at least 30% of its own area visible; after 20 rejected
//    positions it is left out. So no instance is mostly hidden and no painted pixel is
//    unannotated.
//  - Masks are the visible pixels. An instance that nothing covers is written as its polygon
//    (which, rasterised as pycocotools does, gives exactly the painted pixels: the painting uses
//    that rasterisation), an occluded one as a compressed RLE of its visible pixels. bbox is the
//    tight box of the visible mask and area its pixel count.
//  - Everything is a function of (seed, split, image index): the same seed gives the same files.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/coco.h"

namespace gndet::data {

// Image counts above this are refused: file names have room for 7 digits, and a bigger synthetic
// set has no use.
constexpr int64_t kMaxShapesImages = 9'999'999;

struct ShapesOptions {
  std::string out_dir;
  int64_t num_train = 600;
  int64_t num_val = 100;
  int64_t size = 128;
  uint64_t seed = 0;
};

struct ShapesImage {
  Tensor image;                             // (S, S, 3) uint8 RGB
  std::vector<CocoAnnotation> annotations;  // ids, image_id left 0: filled in by the writer
};

// Renders image `index` of `split` (0 = train, 1 = val).
ShapesImage render_shapes_image(uint64_t seed, int split, int64_t index, int64_t size);

struct ShapesSummary {
  int64_t train_images = 0, val_images = 0, train_instances = 0, val_instances = 0;
};

// Writes out_dir/train/NNNNNN.png, out_dir/val/NNNNNN.png, out_dir/annotations/train.json and
// val.json (images ids 1..N, annotation ids 1..). Files are written atomically, the annotation
// files last, so an interrupted run leaves no annotation file that names missing images.
ShapesSummary make_shapes_dataset(const ShapesOptions& options);

// The categories: [{1, "square"}, {2, "circle"}, {3, "triangle"}].
const std::vector<CocoCategory>& shapes_categories();

}  // namespace gndet::data
