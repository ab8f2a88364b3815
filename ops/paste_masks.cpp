#include "ops/paste_masks.h"

#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(paste_masks_kernel, void(const Tensor&, const Tensor&, const Tensor&, double));

Tensor paste_masks(const Tensor& probs, const Tensor& boxes, int64_t height, int64_t width, double threshold) {
  GNDET_CHECK(probs.dim() == 3 && probs.size(1) == probs.size(2), "paste_masks: expected square masks (D, M, M), got ",
              shape_str(probs.shape()));
  GNDET_CHECK(boxes.dim() == 2 && boxes.size(1) == 4 && boxes.size(0) == probs.size(0), "paste_masks: boxes of shape ",
              shape_str(boxes.shape()), " for masks of shape ", shape_str(probs.shape()));
  GNDET_CHECK(height >= 0 && width >= 0, "paste_masks: negative image size ", height, "x", width);
  Tensor out = zeros({probs.size(0), height, width}, TensorOptions(kUInt8, probs.device()));
  if (out.numel() > 0) {
    paste_masks_kernel(probs.device(), out, probs.detach().contiguous(), boxes.detach().to(probs.dtype()).contiguous(),
                       threshold);
  }
  return out;
}

}  // namespace gndet
