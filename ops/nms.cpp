#include "ops/nms.h"

#include "tensor/grad_mode.h"

#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/reduce.h"
#include "ops/sort.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(nms_sorted_kernel, Tensor(const Tensor&, double));

Tensor nms(const Tensor& boxes, const Tensor& scores, double iou_threshold) {
  GNDET_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "nms: boxes must be (K, 4), got ", shape_str(boxes.shape()));
  GNDET_CHECK(scores.dim() == 1 && scores.size(0) == boxes.size(0), "nms: scores of shape ", shape_str(scores.shape()),
              " for boxes of shape ", shape_str(boxes.shape()));
  GNDET_CHECK(boxes.device() == scores.device(), "nms: boxes on ", boxes.device().str(), ", scores on ",
              scores.device().str());
  autograd::NoGradGuard no_grad;
  if (boxes.size(0) == 0) return empty({0}, TensorOptions(kInt64, boxes.device()));
  const Tensor order = argsort(scores.detach(), 0, /*descending=*/true);
  const Tensor sorted = index_select(boxes.detach(), 0, order).contiguous();
  const Tensor keep_pos = nms_sorted_kernel(boxes.device(), sorted, iou_threshold);
  return index_select(order, 0, keep_pos);
}

Tensor batched_nms(const Tensor& boxes, const Tensor& scores, const Tensor& idxs, double iou_threshold) {
  GNDET_CHECK(idxs.dim() == 1 && idxs.size(0) == boxes.size(0), "batched_nms: idxs of shape ",
              shape_str(idxs.shape()), " for boxes of shape ", shape_str(boxes.shape()));
  autograd::NoGradGuard no_grad;
  if (boxes.size(0) == 0) return empty({0}, TensorOptions(kInt64, boxes.device()));
  const double max_coordinate = max(boxes.detach()).item<double>();
  const Tensor offsets = idxs.to(boxes.dtype()) * (max_coordinate + 1.0);
  return nms(boxes.detach() + offsets.unsqueeze(1), scores, iou_threshold);
}

}  // namespace gndet
