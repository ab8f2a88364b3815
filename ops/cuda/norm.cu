// CUDA weight standardisation (mmcv ConvWS2d) and the per-channel affine of frozen BatchNorm
// (ops/norm.h). GroupNorm has its own files (group_norm.cu, group_norm_backward.cu).
//
// Weight standardisation works on the rows of w (O, R), one output channel each: a warp per row
// up to 1024 values, a block per row beyond (launch_rows). A row is at most a few thousand
// values, read from DRAM once; the later passes over it hit L1. The forward's statistics are
// two-pass in double, as the CPU's; the backward's in the weight's type.
#include <climits>

#include "ops/cuda/block_reduce.cuh"
#include "ops/kernel_util.h"
#include "ops/norm.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

__device__ __forceinline__ float sqrt_t(float v) { return sqrtf(v); }
__device__ __forceinline__ double sqrt_t(double v) { return sqrt(v); }

// w_hat = (w - mean) / (std_unbiased + eps) per row, statistics and result in double, rounded once
// (float sums move standardised weights near zero by many ulps; see ops/cpu/norm.cpp row_stats).
template <bool kBlock, class T>
__global__ void ws_forward_cu(const T* __restrict__ w, T* __restrict__ out, int64_t O, int64_t R, T eps) {
  using Team = cuda::RowTeam<kBlock>;
  const int64_t o = Team::row();
  if (o >= O) return;  // a whole warp (or block) leaves together
  const T* row = w + o * R;
  T* dst = out + o * R;
  const int step = Team::size();
  double s = 0;
  for (int64_t i = Team::rank(); i < R; i += step) s += static_cast<double>(row[i]);
  const double mean = Team::reduce(s, cuda::SumOp{}, 0.0) / static_cast<double>(R);
  double q = 0;
  for (int64_t i = Team::rank(); i < R; i += step) {
    const double d = static_cast<double>(row[i]) - mean;
    q += d * d;
  }
  q = Team::reduce(q, cuda::SumOp{}, 0.0);
  const double inv = 1.0 / (sqrt(q / static_cast<double>(R - 1)) + static_cast<double>(eps));
  for (int64_t i = Team::rank(); i < R; i += step) dst[i] = static_cast<T>((static_cast<double>(row[i]) - mean) * inv);
}

// With d = w - mean, s = std_unbiased, u = s + eps (the CPU kernel's formula):
//   dw = (g - mean(g)) / u - d * sum(g * d) / (u^2 * (R - 1) * s), the second term 0 when s == 0.
template <bool kBlock, class T>
__global__ void ws_backward_cu(const T* __restrict__ w, const T* __restrict__ g, T* __restrict__ dw, int64_t O,
                               int64_t R, T eps) {
  using Team = cuda::RowTeam<kBlock>;
  const int64_t o = Team::row();
  if (o >= O) return;
  const T* wr = w + o * R;
  const T* gr = g + o * R;
  T* dst = dw + o * R;
  const int step = Team::size();
  T sw = 0, sg = 0;
  for (int64_t i = Team::rank(); i < R; i += step) {
    sw += wr[i];
    sg += gr[i];
  }
  const T n = static_cast<T>(R);
  const T mean = Team::reduce(sw, cuda::SumOp{}, T(0)) / n;
  const T g_mean = Team::reduce(sg, cuda::SumOp{}, T(0)) / n;
  T q = 0, gd = 0;
  for (int64_t i = Team::rank(); i < R; i += step) {
    const T d = wr[i] - mean;
    q += d * d;
    gd += gr[i] * d;
  }
  q = Team::reduce(q, cuda::SumOp{}, T(0));
  gd = Team::reduce(gd, cuda::SumOp{}, T(0));
  const T s = sqrt_t(q / static_cast<T>(R - 1));
  const T u = s + eps;
  const T k = s > T(0) ? gd / (u * u * static_cast<T>(R - 1) * s) : T(0);
  const T inv_u = T(1) / u;
  for (int64_t i = Team::rank(); i < R; i += step) dst[i] = (gr[i] - g_mean) * inv_u - (wr[i] - mean) * k;
}

void ws_check_rows(const char* op, int64_t R, const Tensor& w) {
  GNDET_CHECK(R >= 2, op, ": rows of ", R, " value(s) in weight ", shape_str(w.shape()),
              " on ", w.device().str(), "; the unbiased std needs at least 2");
}

void weight_standardization_cuda(const Tensor& out, const Tensor& w, double eps) {
  cuda::require_device("weight_standardization", w.device(), {&out});
  const int64_t O = w.size(0), R = w.size(1);
  if (O == 0) return;
  ws_check_rows("weight_standardization", R, w);
  const int dev = w.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_floating(w.dtype(), "weight_standardization", [&]<class T>() {
    cuda::launch_rows(O, R, cuda::stream_for(dev), ws_forward_cu<false, T>, ws_forward_cu<true, T>,
                      static_cast<const T*>(w.raw_data()), static_cast<T*>(out.raw_data()), O, R, static_cast<T>(eps));
  });
}

void weight_standardization_backward_cuda(const Tensor& dw, const Tensor& dout, const Tensor& w, double eps) {
  cuda::require_device("weight_standardization_backward", w.device(), {&dw, &dout});
  const int64_t O = w.size(0), R = w.size(1);
  if (O == 0) return;
  ws_check_rows("weight_standardization_backward", R, w);
  const int dev = w.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_floating(w.dtype(), "weight_standardization_backward", [&]<class T>() {
    cuda::launch_rows(O, R, cuda::stream_for(dev), ws_backward_cu<false, T>, ws_backward_cu<true, T>,
                      static_cast<const T*>(w.raw_data()), static_cast<const T*>(dout.raw_data()),
                      static_cast<T*>(dw.raw_data()), O, R, static_cast<T>(eps));
  });
}

// ---- y (N, C, S) = x * scale[c] + shift[c] ----

// Index is uint32_t when N * C * S fits (32-bit division is several times cheaper).
template <class T, class Index>
__global__ void channel_affine_cu(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ scale,
                                  const T* __restrict__ shift, Index total, Index C, Index S) {
  const Index stride = static_cast<Index>(gridDim.x) * blockDim.x;
  for (Index i = static_cast<Index>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const Index c = (i / S) % C;
    y[i] = x[i] * scale[c] + (shift != nullptr ? shift[c] : T(0));
  }
}

void channel_affine_cuda(const Tensor& y, const Tensor& x, const Tensor& scale, const Tensor& shift) {
  cuda::require_device("channel_affine", x.device(), {&y, &scale});
  if (shift.defined()) cuda::require_device("channel_affine", x.device(), {&shift});
  const int64_t C = x.size(1), S = x.size(2), total = x.numel();
  if (total == 0) return;
  const int dev = x.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  const unsigned grid = cuda::grid_for(total, cuda::kThreads, dev);
  dispatch_floating(x.dtype(), "channel_affine", [&]<class T>() {
    const T* xp = static_cast<const T*>(x.raw_data());
    T* yp = static_cast<T*>(y.raw_data());
    const T* a = static_cast<const T*>(scale.raw_data());
    const T* b = in_ptr<T>(shift);
    // total + one stride must not wrap in 32 bits.
    if (total + static_cast<int64_t>(grid) * cuda::kThreads <= int64_t{UINT_MAX}) {
      channel_affine_cu<T, uint32_t><<<grid, cuda::kThreads, 0, stream>>>(
          xp, yp, a, b, static_cast<uint32_t>(total), static_cast<uint32_t>(C), static_cast<uint32_t>(S));
    } else {
      channel_affine_cu<T, int64_t><<<grid, cuda::kThreads, 0, stream>>>(xp, yp, a, b, total, C, S);
    }
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(weight_standardization_kernel, CUDA, weight_standardization_cuda);
GNDET_REGISTER_KERNEL(weight_standardization_backward_kernel, CUDA, weight_standardization_backward_cuda);
GNDET_REGISTER_KERNEL(channel_affine_kernel, CUDA, channel_affine_cuda);

}  // namespace gndet
