// CUDA RoIAlign (ops/roi_align.h), on the sampling arithmetic shared with the CPU
// (ops/roi_align_math.h). Forward: one thread per output bin (k, c, ph, pw) averages its grid of
// bilinear samples. Backward: one thread per output bin spreads its gradient over the four
// neighbours of every sample with atomicAdd into grad_x (zeroed by the caller); bins of
// different RoIs overlap, so the order of those additions varies from run to run.
// An RoI whose batch index lies outside the batch is an error, as on the CPU: the forward notes
// it in a device flag and raises it after the kernel (one stream synchronisation per call, see
// ops/cuda/error_flag.cuh); its bins are written as 0 meanwhile, and the backward skips it.
#include "ops/cuda/error_flag.cuh"
#include "ops/roi_align.h"
#include "ops/roi_align_math.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

struct FeatureDims {
  int64_t N, C, H, W;
};

template <class T>
__global__ void roi_align_cu(const T* __restrict__ x, const T* __restrict__ rois, T* __restrict__ out, FeatureDims f,
                             int64_t K, RoIAlignParams p, cuda::ErrorSlot bad) {
  const int64_t total = K * f.C * p.out_h * p.out_w;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
    const int64_t pw = o % p.out_w, ph = (o / p.out_w) % p.out_h;
    const int64_t c = (o / (p.out_w * p.out_h)) % f.C, k = o / (p.out_w * p.out_h * f.C);
    const roi::Geometry<T> g = roi::geometry(rois + 5 * k, p);
    if (g.batch < 0 || g.batch >= f.N) {
      bad.note(g.batch, k);
      out[o] = T(0);
      continue;
    }
    const T* plane = x + (g.batch * f.C + c) * f.H * f.W;
    T acc = 0;
    for (int64_t iy = 0; iy < g.grid_h; ++iy) {
      const T y = roi::sample_y(g, ph, iy);
      for (int64_t ix = 0; ix < g.grid_w; ++ix) {
        roi::Bilinear<T> b;
        if (!roi::bilinear(y, roi::sample_x(g, pw, ix), f.H, f.W, &b)) continue;
        acc += b.w00 * plane[b.y0 * f.W + b.x0] + b.w01 * plane[b.y0 * f.W + b.x1] + b.w10 * plane[b.y1 * f.W + b.x0] +
               b.w11 * plane[b.y1 * f.W + b.x1];
      }
    }
    out[o] = acc / g.count;
  }
}

template <class T>
__global__ void roi_align_backward_cu(T* __restrict__ gx, const T* __restrict__ go, const T* __restrict__ rois,
                                      FeatureDims f, int64_t K, RoIAlignParams p) {
  const int64_t total = K * f.C * p.out_h * p.out_w;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
    const int64_t pw = o % p.out_w, ph = (o / p.out_w) % p.out_h;
    const int64_t c = (o / (p.out_w * p.out_h)) % f.C, k = o / (p.out_w * p.out_h * f.C);
    const roi::Geometry<T> g = roi::geometry(rois + 5 * k, p);
    if (g.batch < 0 || g.batch >= f.N) continue;  // the forward refused it
    T* plane = gx + (g.batch * f.C + c) * f.H * f.W;
    const T share = go[o] / g.count;
    for (int64_t iy = 0; iy < g.grid_h; ++iy) {
      const T y = roi::sample_y(g, ph, iy);
      for (int64_t ix = 0; ix < g.grid_w; ++ix) {
        roi::Bilinear<T> b;
        if (!roi::bilinear(y, roi::sample_x(g, pw, ix), f.H, f.W, &b)) continue;
        atomicAdd(plane + b.y0 * f.W + b.x0, share * b.w00);
        atomicAdd(plane + b.y0 * f.W + b.x1, share * b.w01);
        atomicAdd(plane + b.y1 * f.W + b.x0, share * b.w10);
        atomicAdd(plane + b.y1 * f.W + b.x1, share * b.w11);
      }
    }
  }
}

void roi_align_cuda(const Tensor& out, const Tensor& x, const Tensor& rois, RoIAlignParams p) {
  cuda::require_device("roi_align", x.device(), {&out, &rois});
  if (out.numel() == 0) return;
  const FeatureDims f{x.size(0), x.size(1), x.size(2), x.size(3)};
  const int dev = x.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  const cuda::ErrorFlag flag(x.device(), stream);
  const unsigned grid = cuda::grid_for(out.numel(), cuda::kThreads, dev);
  dispatch_floating(x.dtype(), "roi_align", [&]<class T>() {
    roi_align_cu<T><<<grid, cuda::kThreads, 0, stream>>>(static_cast<const T*>(x.raw_data()),
                                                         static_cast<const T*>(rois.raw_data()),
                                                         static_cast<T*>(out.raw_data()), f, rois.size(0), p, flag.slot());
    GNDET_CUDA_LAUNCH_CHECK();
  });
  int64_t batch = 0, roi_index = 0;
  GNDET_CHECK(!flag.raised(&batch, &roi_index), "roi_align: RoI batch index ", batch, " outside the batch of ", f.N,
              " images (RoI ", roi_index, " of ", rois.size(0), ", features ", shape_str(x.shape()), " on ",
              x.device().str(), ")");
}

void roi_align_backward_cuda(const Tensor& grad_x, const Tensor& grad_out, const Tensor& rois, RoIAlignParams p) {
  cuda::require_device("roi_align_backward", grad_x.device(), {&grad_out, &rois});
  if (grad_out.numel() == 0 || grad_x.numel() == 0) return;
  const FeatureDims f{grad_x.size(0), grad_x.size(1), grad_x.size(2), grad_x.size(3)};
  const int dev = grad_x.device().index;
  cuda::DeviceGuard guard(dev);
  const unsigned grid = cuda::grid_for(grad_out.numel(), cuda::kThreads, dev);
  dispatch_floating(grad_x.dtype(), "roi_align_backward", [&]<class T>() {
    roi_align_backward_cu<T><<<grid, cuda::kThreads, 0, cuda::stream_for(dev)>>>(
        static_cast<T*>(grad_x.raw_data()), static_cast<const T*>(grad_out.raw_data()),
        static_cast<const T*>(rois.raw_data()), f, rois.size(0), p);
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(roi_align_kernel, CUDA, roi_align_cuda);
GNDET_REGISTER_KERNEL(roi_align_backward_kernel, CUDA, roi_align_backward_cuda);

}  // namespace gndet
