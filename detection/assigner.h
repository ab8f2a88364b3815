// MaxIoUAssigner (mmdetection): gives every candidate box a ground-truth index or a negative.
//
// With IoU between each box and each gt box:
//   1. every box starts ignored (-1);
//   2. a box whose best IoU is in [0, neg_iou_thr) becomes negative (0);
//   3. a box whose best IoU is >= pos_iou_thr becomes positive for that gt (index + 1);
//   4. match_low_quality: every gt whose best IoU is >= min_pos_iou also claims the boxes that
//      reach that best IoU (all of them when gt_max_assign_all), later gts overriding earlier.
// Worked example (pos 0.5, neg 0.4, min_pos 0.3): IoUs of three boxes with one gt
// (0.35, 0.45, 0.6) -> (0, -1, 1): the first is negative, the second ignored, the third positive.
// With IoUs (0.35, 0.2) and match_low_quality, the first box (the gt's best, 0.35 >= 0.3) -> 1.
#pragma once

#include "tensor/config.h"
#include "tensor/tensor.h"

namespace gndet {

struct AssignResult {
  int64_t num_gts = 0;
  Tensor gt_inds;       // (K) int64: -1 ignore, 0 negative, i + 1 positive for gt i
  Tensor max_overlaps;  // (K) best IoU with any gt (0 when there are none)
  Tensor labels;        // (K) int64: the label of the assigned gt, -1 when not positive
};

class MaxIoUAssigner {
 public:
  double pos_iou_thr = 0.5;
  double neg_iou_thr = 0.5;
  double min_pos_iou = 0.0;
  bool gt_max_assign_all = true;
  bool match_low_quality = true;

  // {"type": "MaxIoUAssigner", "pos_iou_thr", "neg_iou_thr", "min_pos_iou", "match_low_quality",
  //  "gt_max_assign_all", "ignore_iof_thr" (only -1, the zoo's value, is supported)}
  static MaxIoUAssigner from_config(const ConfigNode& cfg);

  // boxes: (K, 4); gt_boxes: (G, 4); gt_labels: (G) int64.
  AssignResult assign(const Tensor& boxes, const Tensor& gt_boxes, const Tensor& gt_labels) const;
};

}  // namespace gndet
