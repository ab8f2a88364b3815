// RandomSampler (mmdetection): picks a fixed-size, class-balanced set of candidates for a loss.
//
// Up to num * pos_fraction positives are drawn uniformly at random from the assigned positives,
// then negatives fill the rest (at most neg_pos_ub * max(1, #pos) of them when neg_pos_ub >= 0).
// With add_gt_as_proposals the gt boxes are prepended to the candidates, each assigned to
// itself, so the second stage always sees some perfect boxes. Drawn indices are returned in
// ascending order (mmdetection applies .unique(), which sorts).
#pragma once

#include "detection/assigner.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace gndet {

struct SamplingResult {
  Tensor pos_inds;       // (P) int64 into the candidates (gt boxes first when they were added)
  Tensor neg_inds;       // (Q) int64
  Tensor pos_boxes;      // (P, 4)
  Tensor neg_boxes;      // (Q, 4)
  Tensor pos_gt_inds;    // (P) int64, 0-based gt index
  Tensor pos_gt_boxes;   // (P, 4)
  Tensor pos_gt_labels;  // (P) int64
  Tensor pos_is_gt;      // (P) bool
  int64_t num_pos() const { return pos_inds.numel(); }
  int64_t num_neg() const { return neg_inds.numel(); }
};

// The keys of a train_cfg.rpn / train_cfg.rcnn section that gndet accepts only with mmdetection's
// defaults: "pos_weight" -1 (positives weigh 1) and "debug" false.
void check_unsupported_train_keys(const ConfigNode& cfg);

class RandomSampler {
 public:
  int64_t num = 512;
  double pos_fraction = 0.25;
  int64_t neg_pos_ub = -1;
  bool add_gt_as_proposals = true;

  // {"type": "RandomSampler", "num", "pos_fraction", "neg_pos_ub", "add_gt_as_proposals"}
  static RandomSampler from_config(const ConfigNode& cfg);

  // Assigns `boxes` to the gts, prepends the gt boxes when add_gt_as_proposals (each assigned to
  // itself with IoU 1, as mmdetection's AssignResult.add_gt_), then samples.
  SamplingResult sample(const MaxIoUAssigner& assigner, const Tensor& boxes, const Tensor& gt_boxes,
                        const Tensor& gt_labels, Generator& gen) const;
  // Samples from an existing assignment of `boxes` (no gt boxes added).
  SamplingResult sample_assigned(const AssignResult& assign, const Tensor& boxes, const Tensor& gt_boxes,
                                 const Tensor& is_gt, Generator& gen) const;
};

}  // namespace gndet
