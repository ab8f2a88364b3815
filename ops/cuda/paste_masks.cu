// CUDA mask pasting (ops/paste_masks.h): one thread per output pixel (d, y, x); pixels outside
// the detection's box range stay 0 (the caller zero-fills), the others sample the M x M map with
// the CPU's arithmetic (ops/paste_masks_math.h). nvcc may fuse its products and sums into FMAs,
// so a probability within rounding of the threshold can land on the other side than on the CPU.
#include "ops/paste_masks.h"
#include "ops/paste_masks_math.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

template <class T>
__global__ void paste_masks_cu(const T* __restrict__ probs, const T* __restrict__ boxes, uint8_t* __restrict__ out,
                               int64_t D, int64_t M, int64_t H, int64_t W, T threshold) {
  const int64_t total = D * H * W;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
    const int64_t x = o % W, y = (o / W) % H, d = o / (W * H);
    const T x0 = boxes[4 * d], y0 = boxes[4 * d + 1], x1 = boxes[4 * d + 2], y1 = boxes[4 * d + 3];
    if (!(x1 > x0) || !(y1 > y0)) continue;  // a degenerate box pastes nothing
    int64_t ya, yb, xa, xb;
    paste::pixel_range(y0, y1, H, &ya, &yb);
    paste::pixel_range(x0, x1, W, &xa, &xb);
    if (y < ya || y >= yb || x < xa || x >= xb) continue;
    const T v = paste::map_coord(y, y0, y1, M), u = paste::map_coord(x, x0, x1, M);
    out[o] = paste::sample(probs + d * M * M, M, v, u) >= threshold ? 1 : 0;
  }
}

void paste_masks_cuda(const Tensor& out, const Tensor& probs, const Tensor& boxes, double threshold) {
  cuda::require_device("paste_masks", probs.device(), {&out, &boxes});
  if (out.numel() == 0 || probs.size(0) == 0) return;
  const int dev = probs.device().index;
  cuda::DeviceGuard guard(dev);
  const unsigned grid = cuda::grid_for(out.numel(), cuda::kThreads, dev);
  dispatch_floating(probs.dtype(), "paste_masks", [&]<class T>() {
    paste_masks_cu<T><<<grid, cuda::kThreads, 0, cuda::stream_for(dev)>>>(
        static_cast<const T*>(probs.raw_data()), static_cast<const T*>(boxes.raw_data()),
        static_cast<uint8_t*>(out.raw_data()), probs.size(0), probs.size(1), out.size(1), out.size(2),
        static_cast<T>(threshold));
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(paste_masks_kernel, CUDA, paste_masks_cuda);

}  // namespace gndet
