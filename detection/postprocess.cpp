#include "detection/postprocess.h"

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/nms.h"
#include "tensor/factory.h"

namespace gndet {

ClassDetections multiclass_nms(const Tensor& boxes, const Tensor& scores, double score_thr, double iou_thr,
                               int64_t max_per_img) {
  autograd::NoGradGuard no_grad;
  const int64_t K = scores.size(0), C = scores.size(1) - 1;
  GNDET_CHECK(boxes.size(0) == K && (boxes.size(1) == 4 * C || boxes.size(1) == 4), "multiclass_nms: boxes of shape ",
              shape_str(boxes.shape()), " for scores of shape ", shape_str(scores.shape()));
  const Tensor per_class = boxes.size(1) == 4 ? boxes.unsqueeze(1).expand({K, C, 4}) : boxes.reshape({K, C, 4});
  const Tensor fg = scores.narrow(1, 0, C);
  // Candidates in (box, class) row-major order, like torch.nonzero on the score mask.
  const Tensor flat = nonzero_1d(gt(fg, score_thr).reshape({-1}));
  ClassDetections out;
  if (flat.numel() == 0) {
    out.boxes = empty({0, 4}, boxes.options());
    out.scores = empty({0}, scores.options());
    out.labels = empty({0}, TensorOptions(kInt64, scores.device()));
    return out;
  }
  const Tensor cand_boxes = index_select(per_class.reshape({K * C, 4}), 0, flat);
  const Tensor cand_scores = index_select(fg.reshape({-1}), 0, flat);
  const Tensor class_of = arange(C, TensorOptions(kInt64, scores.device())).unsqueeze(0).expand({K, C}).reshape({-1});
  const Tensor cand_labels = index_select(class_of, 0, flat);
  Tensor keep = batched_nms(cand_boxes, cand_scores, cand_labels, iou_thr);
  if (max_per_img >= 0 && keep.numel() > max_per_img) keep = keep.narrow(0, 0, max_per_img);
  out.boxes = index_select(cand_boxes, 0, keep);
  out.scores = index_select(cand_scores, 0, keep);
  out.labels = index_select(cand_labels, 0, keep);
  return out;
}

}  // namespace gndet
