// CUDA max pooling (ops/pool.h). Forward: one thread per output, scanning its window in the CPU
// kernel's order (rows, then columns; a strictly larger value or the first NaN wins), so values
// and indices match the CPU exactly. Backward: one thread per output adds its gradient to its
// winner with atomicAdd. The kernel's contract gives it no window geometry (ops/pool.h), so a
// gather over the windows of each input pixel is not possible; a pixel that wins several
// overlapping windows (3x3 / 2 pooling: at most 4) sums them in a run-dependent order, exact
// otherwise (FPN's kernel 1 / stride 2).
#include <climits>

#include "ops/pool.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

struct PoolGeo {
  int64_t planes, H, W, Ho, Wo, kh, kw, sh, sw, ph, pw;
};

PoolGeo make_geo(const Tensor& x, const Tensor& y, const Pool2dParams& p) {
  return {x.size(0) * x.size(1), x.size(2), x.size(3),   y.size(2),    y.size(3),   p.kernel[0],
          p.kernel[1],           p.stride[0], p.stride[1], p.padding[0], p.padding[1]};
}

template <class T>
__global__ void max_pool2d_cu(const T* __restrict__ x, T* __restrict__ out, int64_t* __restrict__ indices, PoolGeo g) {
  const int64_t total = g.planes * g.Ho * g.Wo;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
    const int64_t ow = o % g.Wo, oh = (o / g.Wo) % g.Ho, q = o / (g.Wo * g.Ho);
    const int64_t h0 = oh * g.sh - g.ph, w0 = ow * g.sw - g.pw;
    const int64_t h_lo = h0 > 0 ? h0 : 0, h_hi = h0 + g.kh < g.H ? h0 + g.kh : g.H;
    const int64_t w_lo = w0 > 0 ? w0 : 0, w_hi = w0 + g.kw < g.W ? w0 + g.kw : g.W;
    const T* plane = x + q * g.H * g.W;
    T best = -static_cast<T>(INFINITY);
    int64_t best_at = h_lo * g.W + w_lo;  // every window overlaps the input (ops/pool.cpp's sizes)
    bool nan = false;
    for (int64_t ih = h_lo; ih < h_hi && !nan; ++ih) {
      for (int64_t iw = w_lo; iw < w_hi; ++iw) {
        const T v = plane[ih * g.W + iw];
        if (v > best || v != v) {
          best = v;
          best_at = ih * g.W + iw;
          if (v != v) {  // a NaN wins and stays, as in PyTorch and the CPU kernel
            nan = true;
            break;
          }
        }
      }
    }
    out[o] = best;
    indices[o] = best_at;
  }
}

// dx (zeroed) [q, indices[o]] += dy[o] for every output o of plane q.
template <class T>
__global__ void max_pool2d_backward_cu(T* __restrict__ dx, const T* __restrict__ dy,
                                       const int64_t* __restrict__ indices, int64_t total, int64_t P, int64_t HW) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
    atomicAdd(dx + (o / P) * HW + indices[o], dy[o]);
  }
}

void max_pool2d_cuda(const Tensor& out, const Tensor& indices, const Tensor& x, Pool2dParams p) {
  cuda::require_device("max_pool2d", x.device(), {&out, &indices});
  if (out.numel() == 0) return;
  const PoolGeo g = make_geo(x, out, p);
  const int dev = x.device().index;
  cuda::DeviceGuard guard(dev);
  const unsigned grid = cuda::grid_for(out.numel(), cuda::kThreads, dev);
  dispatch_floating(x.dtype(), "max_pool2d", [&]<class T>() {
    max_pool2d_cu<T><<<grid, cuda::kThreads, 0, cuda::stream_for(dev)>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()),
        static_cast<int64_t*>(indices.raw_data()), g);
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

void max_pool2d_backward_cuda(const Tensor& dx, const Tensor& dy, const Tensor& indices) {
  cuda::require_device("max_pool2d_backward", dx.device(), {&dy, &indices});
  if (dx.numel() == 0) return;
  const int dev = dx.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  GNDET_CUDA_CHECK(cudaMemsetAsync(dx.raw_data(), 0, dx.numel() * dx.element_size(), stream));
  if (dy.numel() == 0) return;
  const unsigned grid = cuda::grid_for(dy.numel(), cuda::kThreads, dev);
  dispatch_floating(dx.dtype(), "max_pool2d_backward", [&]<class T>() {
    max_pool2d_backward_cu<T><<<grid, cuda::kThreads, 0, stream>>>(
        static_cast<T*>(dx.raw_data()), static_cast<const T*>(dy.raw_data()),
        static_cast<const int64_t*>(indices.raw_data()), dy.numel(), dy.size(2) * dy.size(3), dx.size(2) * dx.size(3));
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(max_pool2d_kernel, CUDA, max_pool2d_cuda);
GNDET_REGISTER_KERNEL(max_pool2d_backward_kernel, CUDA, max_pool2d_backward_cuda);

}  // namespace gndet
