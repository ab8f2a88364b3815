// Pictures of detections: masks blended in their class colour, boxes, "class score" labels.
#pragma once

#include <string>
#include <vector>

#include "apps/experiment.h"
#include "detection/structures.h"

namespace gndet::app {

// image: (H, W, 3) uint8 RGB, the original image; detections in its coordinates. With scale > 1
// the image and masks are enlarged (nearest neighbour) before drawing, so that small images get
// readable labels.
Tensor draw_detections(const Tensor& image, const Detections& dets, const std::vector<std::string>& class_names,
                       double score_thr, int scale = 1);

// Tiles (H, W, 3) uint8 pictures into a grid with `columns` columns, each in a cell the size of
// the largest picture, with a margin.
Tensor tile_pictures(const std::vector<Tensor>& pictures, int64_t columns);

// The model's detections (score >= score_thr) on the first `count` images of `dataset`, drawn on
// the original images (twice enlarged when under 256 pixels high, for readable labels) and tiled
// in one row: the picture TensorBoard shows after every epoch. Runs without autograd and restores
// the model's train/eval mode.
Tensor prediction_grid(TwoStageDetector& model, const data::CocoDataset& dataset, int64_t pad_size_divisor,
                       Device device, const std::vector<std::string>& class_names, int64_t count, double score_thr);

}  // namespace gndet::app
