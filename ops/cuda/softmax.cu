// CUDA softmax / log_softmax over rows and their backward (ops/softmax.h): a warp per row up to
// 1024 elements (detection's class scores), a block per row beyond; float math in the input's
// type (the CPU sums in double). Rows are read three (forward) or two (backward) times; a row
// of up to ~1 MB stays in L2 between the passes.
//
// A NaN anywhere in a row makes the whole row NaN, as on the CPU: the max below skips NaNs
// (b > a), but exp(NaN - max) then poisons the sum.
#include "ops/cuda/block_reduce.cuh"
#include "ops/softmax.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

__device__ __forceinline__ float exp_t(float x) { return expf(x); }
__device__ __forceinline__ double exp_t(double x) { return exp(x); }
__device__ __forceinline__ float log_t(float x) { return logf(x); }
__device__ __forceinline__ double log_t(double x) { return log(x); }

template <bool kBlock, class T>
__global__ void softmax_rows_cu(const T* x, T* y, int64_t M, int64_t R, bool log_out) {
  using Team = cuda::RowTeam<kBlock>;
  const int64_t m = Team::row();
  if (m >= M) return;
  const T* row = x + m * R;
  T* out = y + m * R;
  const int step = Team::size();
  T mx = row[0];
  for (int64_t r = Team::rank(); r < R; r += step) mx = row[r] > mx ? row[r] : mx;
  mx = Team::reduce(mx, cuda::MaxOp{}, row[0]);
  T s = 0;
  for (int64_t r = Team::rank(); r < R; r += step) s += exp_t(row[r] - mx);
  s = Team::reduce(s, cuda::SumOp{}, T(0));
  if (log_out) {
    // (x - max) - log(s): both terms small, unlike x - (max + log(s)) for large |max|.
    const T log_s = log_t(s);
    for (int64_t r = Team::rank(); r < R; r += step) out[r] = (row[r] - mx) - log_s;
  } else {
    const T inv = T(1) / s;
    for (int64_t r = Team::rank(); r < R; r += step) out[r] = exp_t(row[r] - mx) * inv;
  }
}

// softmax: gi = y * (g - sum(g * y));   log_softmax: gi = g - exp(y) * sum(g).
template <bool kBlock, class T>
__global__ void softmax_backward_rows_cu(T* grad_in, const T* grad_out, const T* y, int64_t M, int64_t R,
                                         bool log_out) {
  using Team = cuda::RowTeam<kBlock>;
  const int64_t m = Team::row();
  if (m >= M) return;
  const T* g = grad_out + m * R;
  const T* yr = y + m * R;
  T* gi = grad_in + m * R;
  const int step = Team::size();
  T s = 0;
  for (int64_t r = Team::rank(); r < R; r += step) s += log_out ? g[r] : g[r] * yr[r];
  s = Team::reduce(s, cuda::SumOp{}, T(0));
  for (int64_t r = Team::rank(); r < R; r += step) gi[r] = log_out ? g[r] - exp_t(yr[r]) * s : yr[r] * (g[r] - s);
}

void softmax_rows_cuda(const Tensor& out, const Tensor& in, bool log) {
  cuda::require_device("softmax", in.device(), {&out});
  const int64_t M = in.size(0), R = in.size(1);
  if (M == 0 || R == 0) return;
  const int dev = in.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_floating(in.dtype(), "softmax", [&]<class T>() {
    cuda::launch_rows(M, R, cuda::stream_for(dev), softmax_rows_cu<false, T>, softmax_rows_cu<true, T>,
                      static_cast<const T*>(in.raw_data()), static_cast<T*>(out.raw_data()), M, R, log);
  });
}

void softmax_backward_rows_cuda(const Tensor& grad_in, const Tensor& grad_out, const Tensor& y, bool log) {
  cuda::require_device("softmax_backward", y.device(), {&grad_in, &grad_out});
  const int64_t M = y.size(0), R = y.size(1);
  if (M == 0 || R == 0) return;
  const int dev = y.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_floating(y.dtype(), "softmax_backward", [&]<class T>() {
    cuda::launch_rows(M, R, cuda::stream_for(dev), softmax_backward_rows_cu<false, T>,
                      softmax_backward_rows_cu<true, T>, static_cast<T*>(grad_in.raw_data()),
                      static_cast<const T*>(grad_out.raw_data()), static_cast<const T*>(y.raw_data()), M, R, log);
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(softmax_rows_kernel, CUDA, softmax_rows_cuda);
GNDET_REGISTER_KERNEL(softmax_backward_rows_kernel, CUDA, softmax_backward_rows_cuda);

}  // namespace gndet
