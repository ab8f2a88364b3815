// CUDA pairwise box overlaps (ops/box_iou.h): one thread per (i, j) pair, with the CPU's exact
// arithmetic (ops/cuda/box_math.cuh), so assigners see the same IoUs on both devices.
#include "ops/box_iou.h"
#include "ops/cuda/box_math.cuh"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

template <class T>
__global__ void box_overlaps_cu(const T* __restrict__ a, const T* __restrict__ b, T* __restrict__ out, int64_t N,
                                int64_t M, bool iof) {
  namespace bx = cuda::boxes;
  const int64_t total = N * M;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
    const int64_t i = o / M, j = o - i * M;
    const T* p = a + 4 * i;
    const T* q = b + 4 * j;
    const T inter = bx::intersection(p, q);
    const T area_p = bx::area(p);
    // IoU: (area_a + area_b) - inter; IoF: area_a; both clamped below by 1e-6 (box_iou.h).
    const T denom = iof ? area_p : bx::sub(bx::add(area_p, bx::area(q)), inter);
    out[o] = bx::div(inter, bx::max_of(denom, T(1e-6)));
  }
}

void box_overlaps_cuda(const Tensor& out, const Tensor& a, const Tensor& b, OverlapMode mode) {
  cuda::require_device("box_iou", a.device(), {&out, &b});
  if (out.numel() == 0) return;
  const int dev = a.device().index;
  cuda::DeviceGuard guard(dev);
  const unsigned grid = cuda::grid_for(out.numel(), cuda::kThreads, dev);
  dispatch_floating(a.dtype(), "box_iou", [&]<class T>() {
    box_overlaps_cu<T><<<grid, cuda::kThreads, 0, cuda::stream_for(dev)>>>(
        static_cast<const T*>(a.raw_data()), static_cast<const T*>(b.raw_data()), static_cast<T*>(out.raw_data()),
        a.size(0), b.size(0), mode == OverlapMode::IoF);
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(box_overlaps_kernel, CUDA, box_overlaps_cuda);

}  // namespace gndet
