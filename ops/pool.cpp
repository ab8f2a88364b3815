#include "ops/pool.h"

#include "autograd/function.h"
#include "tensor/factory.h"

namespace gndet {

GNDET_DEFINE_KERNEL(max_pool2d_kernel, void(const Tensor&, const Tensor&, const Tensor&, Pool2dParams));
GNDET_DEFINE_KERNEL(max_pool2d_backward_kernel, void(const Tensor&, const Tensor&, const Tensor&));

namespace {

GNDET_OP(kMaxPool2d, "max_pool2d");

// PyTorch's pooling_output_shape without dilation.
int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, bool ceil_mode) {
  const int64_t span = in + 2 * p - k;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;  // the last window must start inside the input or left padding
  return out;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, Pair kernel, Pair stride, Pair padding, bool ceil_mode) {
  const char* op = "max_pool2d";
  GNDET_CHECK(x.defined() && x.dim() == 4, op, ": expected input (N, C, H, W), got ",
              x.defined() ? shape_str(x.shape()) : std::string("undefined"));
  GNDET_CHECK(is_floating(x.dtype()), op, ": expected a float32 or float64 input, got ", dtype_name(x.dtype()));
  Shape out_shape{x.size(0), x.size(1), 0, 0};
  for (int d = 0; d < 2; ++d) {
    GNDET_CHECK(kernel[d] > 0 && stride[d] > 0, op, ": kernel (", kernel[0], ", ", kernel[1], ") and stride (",
                stride[0], ", ", stride[1], ") must be positive");
    GNDET_CHECK(padding[d] >= 0 && 2 * padding[d] <= kernel[d], op, ": padding (", padding[0], ", ", padding[1],
                ") must be at most half the kernel (", kernel[0], ", ", kernel[1], ")");
    const int64_t in = x.size(2 + d);
    GNDET_CHECK(in + 2 * padding[d] >= kernel[d], op, ": input ", shape_str(x.shape()), " padded by (", padding[0],
                ", ", padding[1], ") is smaller than the kernel (", kernel[0], ", ", kernel[1], ")");
    out_shape[2 + d] = pooled_size(in, kernel[d], stride[d], padding[d], ceil_mode);
  }
  const Pool2dParams p{kernel, stride, padding};
  const Tensor xr = x.detach().contiguous();
  Tensor y = empty(out_shape, x.options());
  Tensor indices = empty(out_shape, TensorOptions(kInt64, x.device()));
  if (y.numel() > 0) max_pool2d_kernel(x.device(), y, indices, xr, p);
  autograd::record(kMaxPool2d, {x}, {y}, [idx = autograd::Saved(indices), shape = x.shape()](const Tensors& g) {
    Tensor dx = empty(shape, g[0].options());
    if (dx.numel() > 0) max_pool2d_backward_kernel(dx.device(), dx, g[0].contiguous(), idx.get());
    return Tensors{dx};
  });
  return y;
}

}  // namespace gndet
