#include "detection/sampler.h"

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/sort.h"
#include "tensor/factory.h"

namespace gndet {

void check_unsupported_train_keys(const ConfigNode& cfg) {
  GNDET_CHECK(cfg.get_double("pos_weight", -1.0) < 0, "config ", cfg.path(),
              ".pos_weight: only -1 (positives weigh 1) is supported");
  GNDET_CHECK(!cfg.get_bool("debug", false), "config ", cfg.path(), ".debug: only false is supported");
}

RandomSampler RandomSampler::from_config(const ConfigNode& cfg) {
  cfg.type({"RandomSampler"});
  cfg.check_keys({"type", "num", "pos_fraction", "neg_pos_ub", "add_gt_as_proposals"});
  RandomSampler s;
  s.num = cfg["num"].as_int();
  s.pos_fraction = cfg["pos_fraction"].as_double();
  s.neg_pos_ub = cfg.get_int("neg_pos_ub", -1);
  s.add_gt_as_proposals = cfg.get_bool("add_gt_as_proposals", true);
  GNDET_CHECK(s.num > 0 && s.pos_fraction >= 0 && s.pos_fraction <= 1, "config ", cfg.path(),
              ": num must be positive and pos_fraction in [0, 1]");
  return s;
}

namespace {

// At most `n` of `candidates` (1-D int64), uniformly without replacement, in ascending order.
Tensor choose(const Tensor& candidates, int64_t n, Generator& gen) {
  if (candidates.numel() > n) {
    const Tensor perm = randperm(candidates.numel(), gen).to(candidates.device()).narrow(0, 0, n);
    return sort(index_select(candidates, 0, perm), 0).values;
  }
  return candidates;
}

}  // namespace

SamplingResult RandomSampler::sample_assigned(const AssignResult& assign, const Tensor& boxes, const Tensor& gt_boxes,
                                              const Tensor& is_gt, Generator& gen) const {
  autograd::NoGradGuard no_grad;
  SamplingResult r;
  const int64_t expected_pos = static_cast<int64_t>(static_cast<double>(num) * pos_fraction);
  r.pos_inds = choose(nonzero_1d(gt(assign.gt_inds, 0.0)), expected_pos, gen);
  int64_t expected_neg = num - r.pos_inds.numel();
  if (neg_pos_ub >= 0) {
    expected_neg = std::min(expected_neg, neg_pos_ub * std::max<int64_t>(1, r.pos_inds.numel()));
  }
  r.neg_inds = choose(nonzero_1d(eq(assign.gt_inds, 0.0)), expected_neg, gen);

  r.pos_boxes = index_select(boxes, 0, r.pos_inds);
  r.neg_boxes = index_select(boxes, 0, r.neg_inds);
  r.pos_gt_inds = index_select(assign.gt_inds, 0, r.pos_inds) - 1.0;
  r.pos_gt_labels = index_select(assign.labels, 0, r.pos_inds);
  r.pos_is_gt = index_select(is_gt, 0, r.pos_inds);
  r.pos_gt_boxes = gt_boxes.size(0) > 0 ? index_select(gt_boxes.to(boxes.dtype()), 0, r.pos_gt_inds)
                                        : empty({0, 4}, boxes.options());
  return r;
}

SamplingResult RandomSampler::sample(const MaxIoUAssigner& assigner, const Tensor& boxes, const Tensor& gt_boxes,
                                     const Tensor& gt_labels, Generator& gen) const {
  autograd::NoGradGuard no_grad;
  AssignResult a = assigner.assign(boxes, gt_boxes, gt_labels);
  Tensor candidates = boxes.detach();
  Tensor is_gt = zeros({boxes.size(0)}, TensorOptions(kBool, boxes.device()));
  const int64_t G = gt_boxes.size(0);
  if (add_gt_as_proposals && G > 0) {
    const TensorOptions idx(kInt64, boxes.device());
    candidates = cat({gt_boxes.to(boxes.dtype()), candidates}, 0);
    a.gt_inds = cat({arange(1.0, static_cast<double>(G + 1), 1.0, idx), a.gt_inds}, 0);
    a.labels = cat({gt_labels.to(kInt64), a.labels}, 0);
    a.max_overlaps = cat({ones({G}, a.max_overlaps.options()), a.max_overlaps}, 0);
    is_gt = cat({ones({G}, TensorOptions(kBool, boxes.device())), is_gt}, 0);
  }
  return sample_assigned(a, candidates, gt_boxes, is_gt, gen);
}

}  // namespace gndet
