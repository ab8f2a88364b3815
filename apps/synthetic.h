// A batch without data, for the commands that need one (graph, profile): one image of random
// normal pixels and two objects (boxes and rectangular masks). What these commands measure depends
// on the shapes, not on the pixels.
#pragma once

#include "detection/structures.h"

namespace gndet::app {

struct SyntheticBatch {
  Tensor images;  // (1, 3, height, width)
  std::vector<ImageTargets> targets;
  std::vector<ImageInfo> infos;
};

SyntheticBatch synthetic_batch(int64_t height, int64_t width, int64_t num_classes, bool with_mask);

}  // namespace gndet::app
