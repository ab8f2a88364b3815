#include "ops/roi_align.h"

#include "autograd/function.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(roi_align_kernel, void(const Tensor&, const Tensor&, const Tensor&, RoIAlignParams));
GNDET_DEFINE_KERNEL(roi_align_backward_kernel, void(const Tensor&, const Tensor&, const Tensor&, RoIAlignParams));

namespace {
GNDET_OP(kRoIAlign, "roi_align");
}

Tensor roi_align(const Tensor& x, const Tensor& rois, const RoIAlignParams& p) {
  GNDET_CHECK(x.dim() == 4, "roi_align: expected features (N, C, H, W), got ", shape_str(x.shape()));
  GNDET_CHECK(rois.dim() == 2 && rois.size(1) == 5, "roi_align: expected rois (K, 5) as (batch, x1, y1, x2, y2), got ",
              shape_str(rois.shape()));
  GNDET_CHECK(rois.dtype() == x.dtype() && rois.device() == x.device(), "roi_align: rois are ", dtype_name(rois.dtype()),
              " on ", rois.device().str(), ", features ", dtype_name(x.dtype()), " on ", x.device().str());
  GNDET_CHECK(p.out_h > 0 && p.out_w > 0 && p.spatial_scale > 0 && p.sampling_ratio >= 0,
              "roi_align: invalid parameters (out ", p.out_h, "x", p.out_w, ", scale ", p.spatial_scale, ", sampling ",
              p.sampling_ratio, ")");
  Tensor out = empty({rois.size(0), x.size(1), p.out_h, p.out_w}, x.options());
  const Tensor r = rois.detach().contiguous();
  if (out.numel() > 0) roi_align_kernel(x.device(), out, x.detach().contiguous(), r, p);
  autograd::record(kRoIAlign, {x}, {out}, [r = autograd::Saved(r), shape = x.shape(), p](const Tensors& g) {
    Tensor gx = zeros(shape, g[0].options());
    if (g[0].numel() > 0) roi_align_backward_kernel(gx.device(), gx, g[0].contiguous(), r.get(), p);
    return Tensors{gx};
  });
  return out;
}

}  // namespace gndet
