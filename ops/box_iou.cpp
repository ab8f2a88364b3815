#include "ops/box_iou.h"

#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(box_overlaps_kernel, void(const Tensor&, const Tensor&, const Tensor&, OverlapMode));

Tensor box_iou(const Tensor& a, const Tensor& b, OverlapMode mode) {
  GNDET_CHECK(a.dim() == 2 && a.size(1) == 4 && b.dim() == 2 && b.size(1) == 4, "box_iou: expected (N, 4) and (M, 4), got ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  GNDET_CHECK(a.dtype() == b.dtype() && a.device() == b.device() && is_floating(a.dtype()),
              "box_iou: boxes must be floating and of one dtype and device, got ", dtype_name(a.dtype()), " on ",
              a.device().str(), " and ", dtype_name(b.dtype()), " on ", b.device().str());
  Tensor out = empty({a.size(0), b.size(0)}, a.options());
  if (out.numel() > 0) box_overlaps_kernel(a.device(), out, a.detach().contiguous(), b.detach().contiguous(), mode);
  return out;
}

}  // namespace gndet
