// Pictures of detections: masks blended in their class colour, boxes, "class score" labels.
#pragma once

#include <string>
#include <vector>

#include "detection/structures.h"

namespace gndet::app {

// image: (H, W, 3) uint8 RGB, the original image; detections in its coordinates.
Tensor draw_detections(const Tensor& image, const Detections& dets, const std::vector<std::string>& class_names,
                       double score_thr);

}  // namespace gndet::app
