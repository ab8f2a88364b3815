// CUDA loss kernels (ops/loss.h). Cross-entropy: a warp per sample up to 1024 classes (the box
// head's 81), a block beyond (launch_rows); log-sum-exp with the row max subtracted, in the
// logits' type (the CPU works in double). A target outside [0, C) that is not ignore_index is
// noted in a device flag and raised after the kernel, with the CPU's message (one stream
// synchronisation per call, see ops/cuda/error_flag.cuh). The elementwise losses are flat
// grid-stride loops with the CPU kernels' formulas.
#include "ops/cuda/block_reduce.cuh"
#include "ops/kernel_util.h"
#include "ops/cuda/error_flag.cuh"
#include "ops/loss.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

__device__ __forceinline__ float exp_t(float x) { return expf(x); }
__device__ __forceinline__ double exp_t(double x) { return exp(x); }
__device__ __forceinline__ float log_t(float x) { return logf(x); }
__device__ __forceinline__ double log_t(double x) { return log(x); }
__device__ __forceinline__ float log1p_t(float x) { return log1pf(x); }
__device__ __forceinline__ double log1p_t(double x) { return log1p(x); }

// log(sum(exp(row))) over a team's row of C values; every member gets it.
template <class Team, class T>
__device__ __forceinline__ T row_log_sum_exp(const T* row, int64_t C) {
  T mx = row[0];
  for (int64_t c = Team::rank(); c < C; c += Team::size()) mx = row[c] > mx ? row[c] : mx;
  mx = Team::reduce(mx, cuda::MaxOp{}, row[0]);
  T s = 0;
  for (int64_t c = Team::rank(); c < C; c += Team::size()) s += exp_t(row[c] - mx);
  s = Team::reduce(s, cuda::SumOp{}, T(0));
  return mx + log_t(s);
}

template <bool kBlock, class T, class I>
__global__ void cross_entropy_cu(const T* __restrict__ x, const I* __restrict__ target, const T* __restrict__ w,
                                 T* __restrict__ losses, T* __restrict__ sample_weights, int64_t N, int64_t C,
                                 int64_t ignore_index, cuda::ErrorSlot bad) {
  using Team = cuda::RowTeam<kBlock>;
  const int64_t i = Team::row();
  if (i >= N) return;  // a whole warp (or block) leaves together
  const int64_t k = static_cast<int64_t>(target[i]);
  if (k == ignore_index || k < 0 || k >= C) {  // uniform over the team
    if (Team::rank() == 0) {
      if (k != ignore_index) bad.note(k, i);
      losses[i] = T(0);
      sample_weights[i] = T(0);
    }
    return;
  }
  const T* row = x + i * C;
  const T lse = row_log_sum_exp<Team>(row, C);
  if (Team::rank() == 0) {
    const T wk = w != nullptr ? w[k] : T(1);
    losses[i] = wk * (lse - row[k]);
    sample_weights[i] = wk;
  }
}

// dlogits = grad[i] * w[t_i] * (softmax(row) - onehot(t_i)); zero rows where ignored.
template <bool kBlock, class T, class I>
__global__ void cross_entropy_backward_cu(const T* __restrict__ x, const I* __restrict__ target,
                                          const T* __restrict__ w, const T* __restrict__ grad, T* __restrict__ dx,
                                          int64_t N, int64_t C, int64_t ignore_index) {
  using Team = cuda::RowTeam<kBlock>;
  const int64_t i = Team::row();
  if (i >= N) return;
  const int64_t k = static_cast<int64_t>(target[i]);
  T* drow = dx + i * C;
  if (k == ignore_index || k < 0 || k >= C) {  // out-of-range targets were refused by the forward
    for (int64_t c = Team::rank(); c < C; c += Team::size()) drow[c] = T(0);
    return;
  }
  const T* row = x + i * C;
  const T lse = row_log_sum_exp<Team>(row, C);
  const T scale = grad[i] * (w != nullptr ? w[k] : T(1));
  for (int64_t c = Team::rank(); c < C; c += Team::size()) {
    const T d = scale * exp_t(row[c] - lse);
    drow[c] = c == k ? d - scale : d;
  }
}


void cross_entropy_cuda(const Tensor& losses, const Tensor& sample_weights, const Tensor& logits, const Tensor& target,
                        const Tensor& class_weight, int64_t ignore_index) {
  cuda::require_device("cross_entropy", logits.device(), {&losses, &sample_weights, &target});
  if (class_weight.defined()) cuda::require_device("cross_entropy", logits.device(), {&class_weight});
  const int64_t N = logits.size(0), C = logits.size(1);
  if (N == 0) return;
  const int dev = logits.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  const cuda::ErrorFlag flag(logits.device(), stream);
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<class T>() {
    dispatch_index(target.dtype(), "cross_entropy", [&]<class I>() {
      cuda::launch_rows(N, C, stream, cross_entropy_cu<false, T, I>, cross_entropy_cu<true, T, I>, in_ptr<T>(logits),
                        in_ptr<I>(target), in_ptr<T>(class_weight), static_cast<T*>(losses.raw_data()),
                        static_cast<T*>(sample_weights.raw_data()), N, C, ignore_index, flag.slot());
    });
  });
  int64_t value = 0, sample = 0;
  GNDET_CHECK(!flag.raised(&value, &sample), "cross_entropy: target ", value, " of sample ", sample,
              " is outside [0, ", C, ") and is not ignore_index ", ignore_index);
}

void cross_entropy_backward_cuda(const Tensor& dlogits, const Tensor& grad, const Tensor& logits, const Tensor& target,
                                 const Tensor& class_weight, int64_t ignore_index) {
  cuda::require_device("cross_entropy_backward", logits.device(), {&dlogits, &grad, &target});
  if (class_weight.defined()) cuda::require_device("cross_entropy_backward", logits.device(), {&class_weight});
  const int64_t N = logits.size(0), C = logits.size(1);
  if (N == 0 || C == 0) return;
  const int dev = logits.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&]<class T>() {
    dispatch_index(target.dtype(), "cross_entropy_backward", [&]<class I>() {
      cuda::launch_rows(N, C, cuda::stream_for(dev), cross_entropy_backward_cu<false, T, I>,
                        cross_entropy_backward_cu<true, T, I>, in_ptr<T>(logits), in_ptr<I>(target),
                        in_ptr<T>(class_weight), in_ptr<T>(grad), static_cast<T*>(dlogits.raw_data()), N, C, ignore_index);
    });
  });
}

// ---- elementwise losses: flat loops over n contiguous values ----

#define GNDET_FLAT_LOOP(i, n)                                                                       \
  const int64_t gndet_stride_ = static_cast<int64_t>(gridDim.x) * blockDim.x;                     \
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < (n); i += gndet_stride_)

template <class T>
__global__ void bce_cu(const T* __restrict__ x, const T* __restrict__ t, T* __restrict__ out, int64_t n) {
  GNDET_FLAT_LOOP(i, n) {
    // max(x, 0) - x t + log(1 + exp(-|x|)): exp never overflows, log1p keeps small terms exact.
    const T v = x[i];
    out[i] = (v > T(0) ? v : T(0)) - v * t[i] + log1p_t(exp_t(-fabs(v)));
  }
}

template <class T>
__global__ void bce_backward_cu(const T* __restrict__ x, const T* __restrict__ t, const T* __restrict__ g,
                                T* __restrict__ dx, T* __restrict__ dt, int64_t n) {
  GNDET_FLAT_LOOP(i, n) {
    const T v = x[i];
    const T e = exp_t(-fabs(v));  // sigmoid without overflow, as the CPU kernel
    const T sig = v >= T(0) ? T(1) / (T(1) + e) : e / (T(1) + e);
    dx[i] = g[i] * (sig - t[i]);
    if (dt != nullptr) dt[i] = -g[i] * v;
  }
}

template <class T>
__global__ void smooth_l1_cu(const T* __restrict__ p, const T* __restrict__ t, T* __restrict__ out, int64_t n, T beta) {
  GNDET_FLAT_LOOP(i, n) {
    const T d = fabs(p[i] - t[i]);
    out[i] = d < beta ? T(0.5) * d * d / beta : d - T(0.5) * beta;
  }
}

template <class T>
__global__ void smooth_l1_backward_cu(const T* __restrict__ p, const T* __restrict__ t, const T* __restrict__ g,
                                      T* __restrict__ dp, int64_t n, T beta) {
  GNDET_FLAT_LOOP(i, n) {
    const T d = p[i] - t[i];
    const T slope = fabs(d) < beta ? d / beta : T((d > T(0)) - (d < T(0)));
    dp[i] = g[i] * slope;
  }
}

#undef GNDET_FLAT_LOOP

// Runs launch(grid, stream) for n values on `a`'s device after checking the others live there.
template <class F>
void flat(const char* op, const Tensor& a, std::initializer_list<const Tensor*> others, F&& launch) {
  cuda::require_device(op, a.device(), others);
  const int64_t n = a.numel();
  if (n == 0) return;
  const int dev = a.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_floating(a.dtype(), op, [&]<class T>() {
    launch.template operator()<T>(cuda::grid_for(n, cuda::kThreads, dev), cuda::stream_for(dev), n);
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

void bce_with_logits_cuda(const Tensor& out, const Tensor& logits, const Tensor& target) {
  flat("binary_cross_entropy_with_logits", logits, {&out, &target},
       [&]<class T>(unsigned grid, cudaStream_t s, int64_t n) {
         bce_cu<T><<<grid, cuda::kThreads, 0, s>>>(in_ptr<T>(logits), in_ptr<T>(target), static_cast<T*>(out.raw_data()), n);
       });
}

void bce_with_logits_backward_cuda(const Tensor& dlogits, const Tensor& dtarget, const Tensor& grad,
                                   const Tensor& logits, const Tensor& target) {
  if (dtarget.defined()) cuda::require_device("binary_cross_entropy_with_logits_backward", logits.device(), {&dtarget});
  flat("binary_cross_entropy_with_logits_backward", logits, {&dlogits, &grad, &target},
       [&]<class T>(unsigned grid, cudaStream_t s, int64_t n) {
         bce_backward_cu<T><<<grid, cuda::kThreads, 0, s>>>(
             in_ptr<T>(logits), in_ptr<T>(target), in_ptr<T>(grad), static_cast<T*>(dlogits.raw_data()),
             out_ptr<T>(dtarget), n);
       });
}

void smooth_l1_cuda(const Tensor& out, const Tensor& pred, const Tensor& target, double beta) {
  flat("smooth_l1_loss", pred, {&out, &target}, [&]<class T>(unsigned grid, cudaStream_t s, int64_t n) {
    smooth_l1_cu<T><<<grid, cuda::kThreads, 0, s>>>(in_ptr<T>(pred), in_ptr<T>(target), static_cast<T*>(out.raw_data()), n,
                                                    static_cast<T>(beta));
  });
}

void smooth_l1_backward_cuda(const Tensor& dpred, const Tensor& grad, const Tensor& pred, const Tensor& target,
                             double beta) {
  flat("smooth_l1_loss_backward", pred, {&dpred, &grad, &target}, [&]<class T>(unsigned grid, cudaStream_t s, int64_t n) {
    smooth_l1_backward_cu<T><<<grid, cuda::kThreads, 0, s>>>(in_ptr<T>(pred), in_ptr<T>(target), in_ptr<T>(grad),
                                                             static_cast<T*>(dpred.raw_data()), n, static_cast<T>(beta));
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(cross_entropy_kernel, CUDA, cross_entropy_cuda);
GNDET_REGISTER_KERNEL(cross_entropy_backward_kernel, CUDA, cross_entropy_backward_cuda);
GNDET_REGISTER_KERNEL(bce_with_logits_kernel, CUDA, bce_with_logits_cuda);
GNDET_REGISTER_KERNEL(bce_with_logits_backward_kernel, CUDA, bce_with_logits_backward_cuda);
GNDET_REGISTER_KERNEL(smooth_l1_kernel, CUDA, smooth_l1_cuda);
GNDET_REGISTER_KERNEL(smooth_l1_backward_kernel, CUDA, smooth_l1_backward_cuda);

}  // namespace gndet
