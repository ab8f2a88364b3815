#include "ops/resize.h"

#include "autograd/function.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(upsample_nearest_kernel, void(const Tensor&, const Tensor&));
GNDET_DEFINE_KERNEL(upsample_nearest_backward_kernel, void(const Tensor&, const Tensor&));
GNDET_DEFINE_KERNEL(interpolate_bilinear_kernel, void(const Tensor&, const Tensor&, bool));
GNDET_DEFINE_KERNEL(interpolate_bilinear_backward_kernel, void(const Tensor&, const Tensor&, bool));

namespace {

GNDET_OP(kUpsampleNearest, "upsample_nearest");
GNDET_OP(kInterpolateBilinear, "interpolate_bilinear");

void check_resize(const char* op, const Tensor& x, int64_t out_h, int64_t out_w) {
  GNDET_CHECK(x.defined() && x.dim() == 4, op, ": expected input (N, C, H, W), got ",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  GNDET_CHECK(is_floating(x.dtype()), op, ": expected a float32 or float64 input, got ", dtype_name(x.dtype()));
  GNDET_CHECK(out_h > 0 && out_w > 0, op, ": output size (", out_h, ", ", out_w, ") must be positive");
  GNDET_CHECK(x.size(2) > 0 && x.size(3) > 0, op, ": cannot resize an empty image ", shape_str(x.shape()));
}

}  // namespace

Tensor upsample_nearest(const Tensor& x, int64_t out_h, int64_t out_w) {
  check_resize("upsample_nearest", x, out_h, out_w);
  Tensor y = empty({x.size(0), x.size(1), out_h, out_w}, x.options());
  if (y.numel() > 0) upsample_nearest_kernel(x.device(), y, x.detach().contiguous());
  autograd::record(kUpsampleNearest, {x}, {y}, [shape = x.shape()](const Tensors& g) {
    Tensor dx = empty(shape, g[0].options());
    if (dx.numel() > 0) upsample_nearest_backward_kernel(dx.device(), dx, g[0].contiguous());
    return Tensors{dx};
  });
  return y;
}

Tensor upsample_nearest(const Tensor& x, int64_t scale) {
  GNDET_CHECK(scale > 0, "upsample_nearest: scale factor must be positive, got ", scale);
  GNDET_CHECK(x.defined() && x.dim() == 4, "upsample_nearest: expected input (N, C, H, W), got ",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  return upsample_nearest(x, x.size(2) * scale, x.size(3) * scale);
}

Tensor interpolate_bilinear(const Tensor& x, int64_t out_h, int64_t out_w, bool align_corners) {
  check_resize("interpolate_bilinear", x, out_h, out_w);
  Tensor y = empty({x.size(0), x.size(1), out_h, out_w}, x.options());
  if (y.numel() > 0) interpolate_bilinear_kernel(x.device(), y, x.detach().contiguous(), align_corners);
  autograd::record(kInterpolateBilinear, {x}, {y}, [shape = x.shape(), align_corners](const Tensors& g) {
    Tensor dx = empty(shape, g[0].options());
    if (dx.numel() > 0) interpolate_bilinear_backward_kernel(dx.device(), dx, g[0].contiguous(), align_corners);
    return Tensors{dx};
  });
  return y;
}

}  // namespace gndet
