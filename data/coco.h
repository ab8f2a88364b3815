// COCO "instances" annotation files (images, annotations, categories), read as pycocotools and
// mmdetection read them, and mmdetection's view of them for training: contiguous labels, the
// per-image ground truth of CocoDataset._parse_ann_info and the training image filter.
#pragma once

#include <array>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor/config.h"
#include "data/mask.h"

namespace gndet::data {

// A COCO "segmentation" field: polygons [[x0, y0, x1, y1, ...], ...], an uncompressed RLE
// {"size": [h, w], "counts": [runs]} or a compressed one {"size": [h, w], "counts": "string"}.
struct Segmentation {
  enum class Kind { Polygons, Rle };
  Kind kind = Kind::Polygons;
  std::vector<std::vector<double>> polygons;
  Rle rle;                 // both RLE forms, decoded to runs
  bool compressed = true;  // how an RLE was written (kept for writing it back)

  static Segmentation from_rle(Rle rle) { return {Kind::Rle, {}, std::move(rle), true}; }
};

// Parses a segmentation field; errors name the file and the field's path.
Segmentation parse_segmentation(const ConfigNode& field);
Json segmentation_to_json(const Segmentation& seg);  // RLEs as {"size", "counts"} (string when compressed)
// pycocotools' annToRLE: polygons are rasterised at the image size (each with rleFrPoly) and
// merged by union; an RLE keeps its own size. An empty polygon list gives an empty mask.
Rle segmentation_to_rle(const Segmentation& seg, int64_t image_height, int64_t image_width);

struct CocoImage {
  int64_t id = 0;
  std::string file_name;
  int64_t width = 0;
  int64_t height = 0;
};

struct CocoCategory {
  int64_t id = 0;
  std::string name;
};

struct CocoAnnotation {
  int64_t id = 0;
  int64_t image_id = 0;
  int64_t category_id = 0;
  BoxXywh bbox{};  // x, y, w, h in pixels of the original image
  double area = 0;
  bool iscrowd = false;
  bool ignore = false;  // mmdetection's optional "ignore" flag (pycocotools' evaluation disregards it)
  std::optional<Segmentation> segmentation;
};

// One element of "annotations" (errors name its path, e.g. "annotations[12].bbox").
CocoAnnotation parse_annotation(const ConfigNode& a);

class CocoInstances {
 public:
  // Throws gndet::Error naming the file and the JSON path of a missing or malformed field
  // ("annotations[12].bbox: expected 4 numbers"), duplicate ids, and annotations whose image_id
  // names no image. load() streams the file (data/coco_stream.cpp): each annotation is converted
  // as soon as it is read and its JSON dropped, so neither the file's text nor its JSON tree is
  // ever held whole (train2017: see bench/results/coco_memory.md).
  static CocoInstances load(const std::string& path);
  static CocoInstances parse(const Json& json, const std::string& source);

  const std::string& source() const { return source_; }
  const std::vector<CocoImage>& images() const { return images_; }
  const std::vector<CocoCategory>& categories() const { return categories_; }      // file order
  const std::vector<CocoAnnotation>& annotations() const { return annotations_; }  // file order

  // Index of the image with this id, or -1.
  int64_t image_index(int64_t image_id) const;
  // Indices into annotations() of one image's annotations, in file order.
  const std::vector<int64_t>& annotations_of(int64_t image_index) const { return per_image_[image_index]; }

  // Labels 0..K-1 follow the category ids sorted ascending (mmdetection's cat2label; mmdetection
  // takes the file's order of categories, which COCO's files list by ascending id).
  int64_t num_classes() const { return static_cast<int64_t>(sorted_category_ids_.size()); }
  const std::vector<int64_t>& sorted_category_ids() const { return sorted_category_ids_; }
  int64_t label_of(int64_t category_id) const;  // -1 when no such category
  int64_t category_of(int64_t label) const;     // throws for a label outside 0..K-1
  const std::string& category_name(int64_t label) const;

 private:
  std::string source_;
  std::vector<CocoImage> images_;
  std::vector<CocoCategory> categories_;
  std::vector<CocoAnnotation> annotations_;
  std::vector<std::vector<int64_t>> per_image_;
  std::unordered_map<int64_t, int64_t> image_index_;
  std::unordered_map<int64_t, int64_t> label_of_;
  std::vector<int64_t> sorted_category_ids_;
  std::vector<std::string> names_by_label_;
};

// One image's training targets, as mmdetection's CocoDataset._parse_ann_info builds them.
// Skipped: annotations flagged "ignore", boxes with no overlap with the image, area <= 0, w < 1
// or h < 1, and categories not in the file. Crowd boxes that pass go to ignore_boxes.
struct GtInstances {
  std::vector<std::array<float, 4>> boxes;         // x1, y1, x2, y2 (x2 = x + w), float32 as mmdetection
  std::vector<int64_t> labels;                     // contiguous labels
  std::vector<int64_t> annotations;                // index into CocoInstances::annotations() per box
  std::vector<std::array<float, 4>> ignore_boxes;  // crowd regions, x1, y1, x2, y2
};
GtInstances parse_ann_info(const CocoInstances& coco, int64_t image_index);

// Images used for training, as indices into images(): mmdetection's filter (filter_empty_gt and
// min_size) with "empty" meaning no usable (non-crowd) box after parse_ann_info, and images whose
// shorter side is below min_size dropped. (mmdetection's own filter counts any annotation,
// crowd or degenerate, as non-empty; such images then train with zero boxes.)
std::vector<int64_t> select_train_images(const CocoInstances& coco, bool filter_empty_gt = true, int64_t min_size = 32);

}  // namespace gndet::data
