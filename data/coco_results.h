// COCO detection results: the JSON list that pycocotools' loadRes reads and mmdetection writes,
//   [{"image_id": 42, "category_id": 18, "bbox": [x, y, w, h], "score": 0.91,
//     "segmentation": {"size": [h, w], "counts": "..."}}, ...]
// Which fields a detection carries decides how pycocotools derives its area (see coco_eval.h).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <vector>

#include "data/coco.h"

namespace gndet::data {

struct Detection {
  int64_t image_id = 0;
  int64_t category_id = 0;  // a COCO category id (CocoInstances::category_of(label))
  double score = 0;
  std::optional<BoxXywh> bbox;               // x, y, w, h in original-image pixels
  std::optional<Segmentation> segmentation;  // usually a compressed RLE at the image size
};

// One image's predictions -> COCO results, as mmdetection's results2json writes them: boxes
// x1, y1, x2, y2 -> x, y, w = x2 - x1, h = y2 - y1 (float32 values, differences taken in double),
// contiguous labels -> category ids, masks -> compressed RLEs (image-sized), one entry per box.
//   boxes: (N, 4) float32 in original-image pixels; scores: (N) float32; labels: (N) int64;
//   masks: undefined, or (N, H, W) uint8/bool at the original image size.
void append_detections(std::vector<Detection>& out, const CocoInstances& coco, int64_t image_id, const Tensor& boxes,
                       const Tensor& scores, const Tensor& labels, const Tensor& masks = Tensor());

// Throws gndet::Error naming the file and the JSON path of a malformed entry
// ("dt.json: [12].score: missing required field"). An empty "bbox": [] counts as absent, as in
// pycocotools.
std::vector<Detection> read_detections(const std::string& path);
std::vector<Detection> parse_detections(const Json& json, const std::string& source);

// Writes the list atomically; segmentations as written in Detection (RLEs compressed by default).
void write_detections(const std::string& path, std::span<const Detection> detections);
Json detections_to_json(std::span<const Detection> detections);

}  // namespace gndet::data
