// CUDA resizing (ops/resize.h), with the source positions and weights of the shared
// resize::nearest_source / resize::linear_tap, computed in double as on the CPU.
//  nearest   forward: one thread per output. Backward: a gather, one thread per input pixel,
//            summing the outputs that read it in the CPU's order (rows, then columns): exact.
//            The outputs that read source row `src` are dst in [ceil(src * out / in),
//            ceil((src + 1) * out / in)), from floor(dst * in / out) == src.
//  bilinear  forward: one thread per output, interpolated in double like the CPU. Backward:
//            one thread per output adds its four weighted taps into the zeroed dx with
//            atomicAdd (the clamped taps of align_corners=false make a gather irregular); the
//            order of those additions varies from run to run.
#include "ops/resize.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

struct Planes {
  int64_t count, H, W, Ho, Wo;  // H, W: the (N, C, H, W) tensor; Ho, Wo: the resized one
};
Planes planes_of(const Tensor& in, const Tensor& out) {
  return {in.size(0) * in.size(1), in.size(2), in.size(3), out.size(2), out.size(3)};
}

template <class T>
__global__ void upsample_nearest_cu(const T* __restrict__ x, T* __restrict__ out, Planes p) {
  const int64_t total = p.count * p.Ho * p.Wo;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
    const int64_t ow = o % p.Wo, oh = (o / p.Wo) % p.Ho, q = o / (p.Wo * p.Ho);
    out[o] = x[(q * p.H + resize::nearest_source(oh, p.H, p.Ho)) * p.W + resize::nearest_source(ow, p.W, p.Wo)];
  }
}

// First output position whose nearest source is >= src.
__device__ __forceinline__ int64_t first_reader(int64_t src, int64_t in, int64_t out) {
  return (src * out + in - 1) / in;
}

template <class T>
__global__ void upsample_nearest_backward_cu(T* __restrict__ dx, const T* __restrict__ dy, Planes p) {
  const int64_t total = p.count * p.H * p.W;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t iw = i % p.W, ih = (i / p.W) % p.H, q = i / (p.W * p.H);
    const int64_t oh0 = first_reader(ih, p.H, p.Ho), oh1 = first_reader(ih + 1, p.H, p.Ho);
    const int64_t ow0 = first_reader(iw, p.W, p.Wo), ow1 = first_reader(iw + 1, p.W, p.Wo);
    const T* g = dy + q * p.Ho * p.Wo;
    T sum = 0;
    for (int64_t oh = oh0; oh < oh1; ++oh) {
      for (int64_t ow = ow0; ow < ow1; ++ow) sum += g[oh * p.Wo + ow];
    }
    dx[i] = sum;
  }
}

template <class T>
__global__ void interpolate_bilinear_cu(const T* __restrict__ x, T* __restrict__ out, Planes p, bool align_corners) {
  const int64_t total = p.count * p.Ho * p.Wo;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
    const int64_t ow = o % p.Wo, oh = (o / p.Wo) % p.Ho, q = o / (p.Wo * p.Ho);
    const resize::LinearTap h = resize::linear_tap(oh, p.H, p.Ho, align_corners);
    const resize::LinearTap w = resize::linear_tap(ow, p.W, p.Wo, align_corners);
    const T* top = x + (q * p.H + h.i0) * p.W;
    const T* bottom = x + (q * p.H + h.i1) * p.W;
    const double v = h.w0 * (w.w0 * top[w.i0] + w.w1 * top[w.i1]) + h.w1 * (w.w0 * bottom[w.i0] + w.w1 * bottom[w.i1]);
    out[o] = static_cast<T>(v);
  }
}

template <class T>
__global__ void interpolate_bilinear_backward_cu(T* __restrict__ dx, const T* __restrict__ dy, Planes p,
                                                 bool align_corners) {
  const int64_t total = p.count * p.Ho * p.Wo;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; o < total; o += stride) {
    const int64_t ow = o % p.Wo, oh = (o / p.Wo) % p.Ho, q = o / (p.Wo * p.Ho);
    const resize::LinearTap h = resize::linear_tap(oh, p.H, p.Ho, align_corners);
    const resize::LinearTap w = resize::linear_tap(ow, p.W, p.Wo, align_corners);
    T* top = dx + (q * p.H + h.i0) * p.W;
    T* bottom = dx + (q * p.H + h.i1) * p.W;
    const double g = dy[o];
    atomicAdd(top + w.i0, static_cast<T>(h.w0 * w.w0 * g));
    atomicAdd(top + w.i1, static_cast<T>(h.w0 * w.w1 * g));
    atomicAdd(bottom + w.i0, static_cast<T>(h.w1 * w.w0 * g));
    atomicAdd(bottom + w.i1, static_cast<T>(h.w1 * w.w1 * g));
  }
}

// Runs `launch(grid, stream)` over `work` items on t's device, unless there are none.
template <class F>
void on_device(const char* op, const Tensor& a, const Tensor& b, int64_t work, F&& launch) {
  cuda::require_device(op, a.device(), {&b});
  if (work == 0) return;
  const int dev = a.device().index;
  cuda::DeviceGuard guard(dev);
  launch(cuda::grid_for(work, cuda::kThreads, dev), cuda::stream_for(dev));
}

void upsample_nearest_cuda(const Tensor& out, const Tensor& x) {
  on_device("upsample_nearest", out, x, out.numel(), [&](unsigned grid, cudaStream_t stream) {
    dispatch_floating(x.dtype(), "upsample_nearest", [&]<class T>() {
      upsample_nearest_cu<T><<<grid, cuda::kThreads, 0, stream>>>(static_cast<const T*>(x.raw_data()),
                                                                  static_cast<T*>(out.raw_data()), planes_of(x, out));
      GNDET_CUDA_LAUNCH_CHECK();
    });
  });
}

void upsample_nearest_backward_cuda(const Tensor& dx, const Tensor& dy) {
  on_device("upsample_nearest_backward", dx, dy, dx.numel(), [&](unsigned grid, cudaStream_t stream) {
    dispatch_floating(dx.dtype(), "upsample_nearest_backward", [&]<class T>() {
      upsample_nearest_backward_cu<T><<<grid, cuda::kThreads, 0, stream>>>(
          static_cast<T*>(dx.raw_data()), static_cast<const T*>(dy.raw_data()), planes_of(dx, dy));
      GNDET_CUDA_LAUNCH_CHECK();
    });
  });
}

void interpolate_bilinear_cuda(const Tensor& out, const Tensor& x, bool align_corners) {
  on_device("interpolate_bilinear", out, x, out.numel(), [&](unsigned grid, cudaStream_t stream) {
    dispatch_floating(x.dtype(), "interpolate_bilinear", [&]<class T>() {
      interpolate_bilinear_cu<T><<<grid, cuda::kThreads, 0, stream>>>(
          static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), planes_of(x, out), align_corners);
      GNDET_CUDA_LAUNCH_CHECK();
    });
  });
}

void interpolate_bilinear_backward_cuda(const Tensor& dx, const Tensor& dy, bool align_corners) {
  on_device("interpolate_bilinear_backward", dx, dy, dx.numel(), [&](unsigned, cudaStream_t stream) {
    GNDET_CUDA_CHECK(cudaMemsetAsync(dx.raw_data(), 0, dx.numel() * dx.element_size(), stream));
    if (dy.numel() == 0) return;
    const unsigned grid = cuda::grid_for(dy.numel(), cuda::kThreads, dx.device().index);
    dispatch_floating(dx.dtype(), "interpolate_bilinear_backward", [&]<class T>() {
      interpolate_bilinear_backward_cu<T><<<grid, cuda::kThreads, 0, stream>>>(
          static_cast<T*>(dx.raw_data()), static_cast<const T*>(dy.raw_data()), planes_of(dx, dy), align_corners);
      GNDET_CUDA_LAUNCH_CHECK();
    });
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(upsample_nearest_kernel, CUDA, upsample_nearest_cuda);
GNDET_REGISTER_KERNEL(upsample_nearest_backward_kernel, CUDA, upsample_nearest_backward_cuda);
GNDET_REGISTER_KERNEL(interpolate_bilinear_kernel, CUDA, interpolate_bilinear_cuda);
GNDET_REGISTER_KERNEL(interpolate_bilinear_backward_kernel, CUDA, interpolate_bilinear_backward_cuda);

}  // namespace gndet
