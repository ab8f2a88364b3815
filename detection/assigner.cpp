#include "detection/assigner.h"

#include "tensor/grad_mode.h"
#include "ops/box_iou.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/reduce.h"
#include "tensor/factory.h"

namespace gndet {

MaxIoUAssigner MaxIoUAssigner::from_config(const ConfigNode& cfg) {
  cfg.type({"MaxIoUAssigner"});
  cfg.check_keys({"type", "pos_iou_thr", "neg_iou_thr", "min_pos_iou", "match_low_quality", "gt_max_assign_all",
                  "ignore_iof_thr"});
  MaxIoUAssigner a;
  a.pos_iou_thr = cfg["pos_iou_thr"].as_double();
  a.neg_iou_thr = cfg["neg_iou_thr"].as_double();
  a.min_pos_iou = cfg.get_double("min_pos_iou", 0.0);
  a.match_low_quality = cfg.get_bool("match_low_quality", true);
  a.gt_max_assign_all = cfg.get_bool("gt_max_assign_all", true);
  const double ignore_iof = cfg.get_double("ignore_iof_thr", -1.0);
  GNDET_CHECK(ignore_iof < 0, "config ", cfg.path(), ".ignore_iof_thr: only -1 (ignored boxes unused) is supported");
  return a;
}

AssignResult MaxIoUAssigner::assign(const Tensor& boxes, const Tensor& gt_boxes, const Tensor& gt_labels) const {
  GNDET_CHECK(gt_labels.dim() == 1 && gt_labels.size(0) == gt_boxes.size(0), "MaxIoUAssigner: ", gt_boxes.size(0),
              " gt boxes but gt_labels of shape ", shape_str(gt_labels.shape()));
  autograd::NoGradGuard no_grad;
  const int64_t K = boxes.size(0), G = gt_boxes.size(0);
  const TensorOptions idx(kInt64, boxes.device());
  AssignResult r;
  r.num_gts = G;
  if (G == 0 || K == 0) {
    r.gt_inds = zeros({K}, idx);  // no gt: every box is background
    r.max_overlaps = zeros({K}, boxes.options());
    r.labels = full({K}, -1.0, idx);
    return r;
  }
  const Tensor overlaps = box_iou(gt_boxes.to(boxes.dtype()), boxes);  // (G, K)
  const ValuesIndices best_gt = max(overlaps, 0);                      // per box
  r.max_overlaps = best_gt.values;

  Tensor assigned = full({K}, -1.0, idx);
  const Tensor negative = logical_and(ge(r.max_overlaps, 0.0), lt(r.max_overlaps, neg_iou_thr));
  assigned = where(negative, zeros({}, idx), assigned);
  assigned = where(ge(r.max_overlaps, pos_iou_thr), best_gt.indices + 1.0, assigned);

  if (match_low_quality) {
    const Tensor gt_best = max(overlaps, 1, /*keepdim=*/true).values;  // (G, 1)
    const Tensor eligible = ge(gt_best, min_pos_iou);                  // (G, 1)
    Tensor claims;                                                     // (G, K): gt i claims box k
    if (gt_max_assign_all) {
      claims = logical_and(eq(overlaps, gt_best), eligible);
    } else {
      const Tensor argbest = argmax(overlaps, 1, /*keepdim=*/true);    // (G, 1)
      claims = logical_and(eq(arange(K, idx).unsqueeze(0), argbest), eligible);
    }
    // The last claiming gt wins, as in mmdetection's loop over gts.
    const Tensor gt_ids = arange(G, idx).unsqueeze(1).expand({G, K});
    const Tensor last = max(where(claims, gt_ids, -1.0), 0).values;    // (K), -1 when unclaimed
    assigned = where(ge(last, 0.0), last + 1.0, assigned);
  }
  r.gt_inds = assigned;
  const Tensor positive = gt(assigned, 0.0);
  const Tensor safe = clamp_min(assigned - 1.0, 0.0);
  r.labels = where(positive, index_select(gt_labels.to(kInt64), 0, safe), -1.0);
  return r;
}

}  // namespace gndet
