// CUDA convolution kernels (ops/conv.h): conv2d forward, input gradient, weight gradient, and
// the per-channel bias gradient. conv_transpose2d needs nothing more (ops/conv.cpp runs it on
// these three).
//
// Each call goes to cuDNN (ops/cuda/conv_cudnn.cpp) when gndet is built with it and the switch
// (ops/cuda/tuning.h) allows; a call cuDNN declines, or every call in a build without cuDNN,
// runs the own path here: per image, im2col into a column buffer, then one cuBLAS strided-batched
// GEMM over the groups. Per group g, with K = C_in/G * kh * kw and P = H_out * W_out:
//   forward          Y_g (C_out/G, P)  = W_g (C_out/G, K) * col_g (K, P)
//   input gradient   dcol_g (K, P)     = W_g^T * dY_g, then col2im (a gather: each input element
//                                        sums the column entries that read it; no atomics)
//   weight gradient  dW_g (C_out/G, K) = sum over images of dY_g * col_g^T (GEMM beta = 1)
// Row-major products go to column-major cuBLAS as in ops/cuda/linalg.cu: C = A B is computed as
// C^T = B^T A^T, each operand passed as stored. A 1x1 / stride-1 / unpadded convolution skips
// im2col (its column matrix is the image). The column buffer holds at most kColumnBudget values:
// larger images are processed in ranges of output columns. float32 uses TF32 tensor cores when
// cuda::allow_tf32(); results are deterministic (no atomics, fixed GEMM order). Autocast's
// bfloat16 / float16 operands go to cuDNN's tensor cores (float32 accumulation); the own path
// computes them in float32 and rounds the result (own_path).
#include <algorithm>
#include <climits>
#include <type_traits>

#include "ops/conv.h"
#include "ops/conv_geometry.h"
#include "ops/cuda/conv_cuda.h"
#include "ops/cuda/tuning.h"
#include "ops/reduce.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/factory.h"

namespace gndet {
namespace {

constexpr int64_t kColumnBudget = int64_t{1} << 24;  // values in one column buffer (64 MB in float)

// Output columns per column-buffer pass.
int64_t cols_per_pass(const ConvGeometry& g) {
  return std::clamp<int64_t>(kColumnBudget / std::max<int64_t>(g.C_in * g.kh * g.kw, 1), 1, g.P());
}

// col[r * pc + q] for r = (c * kh + i) * kw + j over all C_in channels (so group g's K rows are
// one block) and output columns p0 + q, q < pc, of one image x_n.
template <class T>
__global__ void im2col_cu(const T* __restrict__ x_n, T* __restrict__ col, ConvGeometry g, int64_t p0, int64_t pc) {
  const int64_t total = g.C_in * g.kh * g.kw * pc;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const int64_t q = idx % pc, r = idx / pc;
    const int64_t j = r % g.kw, i = (r / g.kw) % g.kh, c = r / (g.kw * g.kh);
    const int64_t p = p0 + q, oh = p / g.W_out, ow = p - oh * g.W_out;
    const int64_t ih = oh * g.sh - g.ph + i * g.dh, iw = ow * g.sw - g.pw + j * g.dw;
    col[idx] = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W ? x_n[(c * g.H + ih) * g.W + iw] : T(0);
  }
}

// The adjoint of im2col_cu, restricted to output columns [p0, p0 + pc): every input element of
// image dx_n gathers the column entries read from it (accumulate: adds to dx_n, else overwrites).
template <class T>
__global__ void col2im_cu(const T* __restrict__ col, T* __restrict__ dx_n, ConvGeometry g, int64_t p0, int64_t pc,
                          bool accumulate) {
  const int64_t total = g.C_in * g.H * g.W;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; idx < total; idx += stride) {
    const int64_t iw = idx % g.W, ih = (idx / g.W) % g.H, c = idx / (g.W * g.H);
    T sum = 0;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t t = ih + g.ph - i * g.dh;  // = oh * sh for the output row whose tap i reads ih
      if (t < 0 || t % g.sh != 0 || t / g.sh >= g.H_out) continue;
      const int64_t oh = t / g.sh;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t u = iw + g.pw - j * g.dw;
        if (u < 0 || u % g.sw != 0 || u / g.sw >= g.W_out) continue;
        const int64_t p = oh * g.W_out + u / g.sw;
        if (p < p0 || p >= p0 + pc) continue;
        sum += col[((c * g.kh + i) * g.kw + j) * pc + (p - p0)];
      }
    }
    dx_n[idx] = accumulate ? dx_n[idx] + sum : sum;
  }
}

// y (N, C, P) += b[c].
template <class T>
__global__ void add_bias_cu(T* __restrict__ y, const T* __restrict__ b, int64_t total, int64_t C, int64_t P) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    y[i] += b[(i / P) % C];
  }
}

int as_int(int64_t v, const char* what, const ConvGeometry& g) {
  GNDET_CHECK(v <= INT_MAX, "conv2d: ", what, " = ", v, " exceeds cuBLAS's int range (input (", g.N, ", ", g.C_in,
              ", ", g.H, ", ", g.W, "), output channels ", g.C_out, ", kernel ", g.kh, "x", g.kw, ")");
  return static_cast<int>(v);
}

// C = op(A) op(B) (+ beta C) in cuBLAS's column-major terms, batched over the groups.
template <class T>
void gemm_groups(cublasHandle_t h, const ConvGeometry& g, cublasOperation_t ta, cublasOperation_t tb, int64_t m, int64_t n,
                 int64_t k, const T* A, int64_t lda, int64_t sA, const T* B, int64_t ldb, int64_t sB, T beta, T* C,
                 int64_t ldc, int64_t sC) {
  const T alpha = 1;
  const int im = as_int(m, "m", g), in = as_int(n, "n", g), ik = as_int(k, "k", g);
  const int ia = as_int(lda, "lda", g), ib = as_int(ldb, "ldb", g), ic = as_int(ldc, "ldc", g);
  const int batch = as_int(g.groups, "groups", g);
  if constexpr (std::is_same_v<T, float>) {
    const cublasComputeType_t compute = cuda::allow_tf32() ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    GNDET_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, ta, tb, im, in, ik, &alpha, A, CUDA_R_32F, ia, sA, B, CUDA_R_32F,
                                                  ib, sB, &beta, C, CUDA_R_32F, ic, sC, batch, compute,
                                                  CUBLAS_GEMM_DEFAULT));
  } else {
    GNDET_CUBLAS_CHECK(cublasGemmStridedBatchedEx(h, ta, tb, im, in, ik, &alpha, A, CUDA_R_64F, ia, sA, B, CUDA_R_64F,
                                                  ib, sB, &beta, C, CUDA_R_64F, ic, sC, batch, CUBLAS_COMPUTE_64F,
                                                  CUBLAS_GEMM_DEFAULT));
  }
}

// A column buffer for one pass (absent for pointwise convolutions).
Tensor column_buffer(const ConvGeometry& g, const Tensor& like) {
  if (g.pointwise()) return Tensor();
  return empty({g.C_in * g.kh * g.kw * cols_per_pass(g)}, like.options());
}

template <class T>
void launch_im2col(const ConvGeometry& g, const T* x_n, T* col, int64_t p0, int64_t pc, int dev, cudaStream_t stream) {
  const unsigned grid = cuda::grid_for(g.C_in * g.kh * g.kw * pc, cuda::kThreads, dev);
  im2col_cu<T><<<grid, cuda::kThreads, 0, stream>>>(x_n, col, g, p0, pc);
  GNDET_CUDA_LAUNCH_CHECK();
}

void gemm_forward(const Tensor& y, const Tensor& x, const Tensor& w, const Conv2dParams& p) {
  const ConvGeometry g = conv_geometry(x, y, w, p);
  const int dev = x.device().index;
  const cudaStream_t stream = cuda::stream_for(dev);
  const Tensor col = column_buffer(g, x);
  cuda::CublasLease blas(dev);
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() {
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* wp = static_cast<const T*>(w.raw_data());
    T* yp = static_cast<T*>(y.raw_data());
    const int64_t P = g.P(), K = g.K(), cog = g.cout_g(), step = cols_per_pass(g);
    for (int64_t n = 0; n < g.N; ++n) {
      const T* x_n = xp + n * g.C_in * g.HW();
      T* y_n = yp + n * g.C_out * P;
      for (int64_t p0 = 0; p0 < P; p0 += step) {
        const int64_t pc = std::min(step, P - p0);
        const T* A;
        int64_t lda, sA;
        if (g.pointwise()) {
          A = x_n + p0, lda = g.HW(), sA = g.cin_g() * g.HW();
        } else {
          T* c = static_cast<T*>(col.raw_data());
          launch_im2col(g, x_n, c, p0, pc, dev, stream);
          A = c, lda = pc, sA = K * pc;
        }
        gemm_groups<T>(blas.get(), g, CUBLAS_OP_N, CUBLAS_OP_N, pc, cog, K, A, lda, sA, wp, K, cog * K, T(0), y_n + p0,
                       P, cog * P);
      }
    }
  });
}

void gemm_backward_input(const Tensor& dx, const Tensor& dy, const Tensor& w, const Conv2dParams& p) {
  const ConvGeometry g = conv_geometry(dx, dy, w, p);
  const int dev = dx.device().index;
  const cudaStream_t stream = cuda::stream_for(dev);
  const Tensor col = column_buffer(g, dx);
  cuda::CublasLease blas(dev);
  dispatch_floating(dx.dtype(), "conv2d_backward_input", [&]<class T>() {
    const T* dyp = static_cast<const T*>(dy.raw_data());
    const T* wp = static_cast<const T*>(w.raw_data());
    T* dxp = static_cast<T*>(dx.raw_data());
    const int64_t P = g.P(), K = g.K(), cog = g.cout_g(), step = cols_per_pass(g);
    for (int64_t n = 0; n < g.N; ++n) {
      const T* dy_n = dyp + n * g.C_out * P;
      T* dx_n = dxp + n * g.C_in * g.HW();
      for (int64_t p0 = 0; p0 < P; p0 += step) {
        const int64_t pc = std::min(step, P - p0);
        if (g.pointwise()) {  // every dx element is one GEMM output: written exactly once
          gemm_groups<T>(blas.get(), g, CUBLAS_OP_N, CUBLAS_OP_T, pc, K, cog, dy_n + p0, P, cog * P, wp, K, cog * K,
                         T(0), dx_n + p0, g.HW(), g.cin_g() * g.HW());
          continue;
        }
        T* c = static_cast<T*>(col.raw_data());
        gemm_groups<T>(blas.get(), g, CUBLAS_OP_N, CUBLAS_OP_T, pc, K, cog, dy_n + p0, P, cog * P, wp, K, cog * K, T(0),
                       c, pc, K * pc);
        const unsigned grid = cuda::grid_for(g.C_in * g.HW(), cuda::kThreads, dev);
        col2im_cu<T><<<grid, cuda::kThreads, 0, stream>>>(c, dx_n, g, p0, pc, p0 > 0);
        GNDET_CUDA_LAUNCH_CHECK();
      }
    }
  });
}

void gemm_backward_weight(const Tensor& dw, const Tensor& dy, const Tensor& x, const Conv2dParams& p) {
  const ConvGeometry g = conv_geometry(x, dy, dw, p);
  const int dev = x.device().index;
  const cudaStream_t stream = cuda::stream_for(dev);
  const Tensor col = column_buffer(g, x);
  cuda::CublasLease blas(dev);
  dispatch_floating(dw.dtype(), "conv2d_backward_weight", [&]<class T>() {
    const T* dyp = static_cast<const T*>(dy.raw_data());
    const T* xp = static_cast<const T*>(x.raw_data());
    T* dwp = static_cast<T*>(dw.raw_data());
    const int64_t P = g.P(), K = g.K(), cog = g.cout_g(), step = cols_per_pass(g);
    bool first = true;
    for (int64_t n = 0; n < g.N; ++n) {
      const T* x_n = xp + n * g.C_in * g.HW();
      const T* dy_n = dyp + n * g.C_out * P;
      for (int64_t p0 = 0; p0 < P; p0 += step) {
        const int64_t pc = std::min(step, P - p0);
        const T* A;
        int64_t lda, sA;
        if (g.pointwise()) {
          A = x_n + p0, lda = g.HW(), sA = g.cin_g() * g.HW();
        } else {
          T* c = static_cast<T*>(col.raw_data());
          launch_im2col(g, x_n, c, p0, pc, dev, stream);
          A = c, lda = pc, sA = K * pc;
        }
        gemm_groups<T>(blas.get(), g, CUBLAS_OP_T, CUBLAS_OP_N, K, cog, pc, A, lda, sA, dy_n + p0, P, cog * P,
                       first ? T(0) : T(1), dwp, K, cog * K);
        first = false;
      }
    }
  });
}

// ---- dispatch ----

bool want_cudnn() {
  const cuda::ConvBackend b = cuda::conv_backend();
#if GNDET_WITH_CUDNN
  return b != cuda::ConvBackend::Gemm;
#else
  GNDET_CHECK(b != cuda::ConvBackend::Cudnn, "conv2d: the cuDNN backend was requested (GNDET_CONV_BACKEND / "
              "set_conv_backend) but gndet was built without cuDNN");
  return false;
#endif
}

// The own path for autocast's 16-bit operands (ops/autocast.h), reached when cuDNN declines them
// or is off: the GEMM path in float32 on the widened operands (exact), its result rounded once to
// the 16-bit type -- the numbers the CPU computes, without the tensor cores.
template <class GemmPass>
void own_path(const Tensor& out, const Tensor& a, const Tensor& b, const Conv2dParams& p, GemmPass gemm_pass) {
  if (!is_reduced_float(out.dtype())) return gemm_pass(out, a, b, p);
  const Tensor wide = empty(out.shape(), TensorOptions(kFloat32, out.device()));
  gemm_pass(wide, a.to(kFloat32), b.to(kFloat32), p);
  Tensor(out).copy_(wide);  // a handle to the same storage
}

void conv2d_forward_cuda(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, Conv2dParams p) {
  cuda::require_device("conv2d", x.device(), {&y, &w});
  if (b.defined()) cuda::require_device("conv2d", x.device(), {&b});
  cuda::DeviceGuard guard(x.device().index);
  [[maybe_unused]] const bool try_cudnn = want_cudnn();
  bool done = false;
#if GNDET_WITH_CUDNN
  if (try_cudnn) done = cuda::cudnn_conv_forward(y, x, w, p);
#endif
  if (!done) own_path(y, x, w, p, gemm_forward);
  cuda::note_conv_call(done);
  if (!b.defined() || y.numel() == 0) return;
  const int dev = x.device().index;
  const unsigned grid = cuda::grid_for(y.numel(), cuda::kThreads, dev);
  dispatch_floating(y.dtype(), "conv2d", [&]<class T>() {
    add_bias_cu<T><<<grid, cuda::kThreads, 0, cuda::stream_for(dev)>>>(
        static_cast<T*>(y.raw_data()), static_cast<const T*>(b.raw_data()), y.numel(), y.size(1), y.size(2) * y.size(3));
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

void conv2d_backward_input_cuda(const Tensor& dx, const Tensor& dy, const Tensor& w, Conv2dParams p) {
  cuda::require_device("conv2d_backward_input", dx.device(), {&dy, &w});
  cuda::DeviceGuard guard(dx.device().index);
  [[maybe_unused]] const bool try_cudnn = want_cudnn();
  bool done = false;
#if GNDET_WITH_CUDNN
  if (try_cudnn) done = cuda::cudnn_conv_backward_input(dx, dy, w, p);
#endif
  if (!done) own_path(dx, dy, w, p, gemm_backward_input);
  cuda::note_conv_call(done);
}

void conv2d_backward_weight_cuda(const Tensor& dw, const Tensor& dy, const Tensor& x, Conv2dParams p) {
  cuda::require_device("conv2d_backward_weight", dw.device(), {&dy, &x});
  cuda::DeviceGuard guard(dw.device().index);
  [[maybe_unused]] const bool try_cudnn = want_cudnn();
  bool done = false;
#if GNDET_WITH_CUDNN
  if (try_cudnn) done = cuda::cudnn_conv_backward_weight(dw, dy, x, p);
#endif
  if (!done) own_path(dw, dy, x, p, gemm_backward_weight);
  cuda::note_conv_call(done);
}

// db (C) = sum of dy (N, C, S) over N and S: row sums of (N * C, S), then column sums of (N, C),
// both by the reduce kernels (chunked for long rows, deterministic).
void channel_sum_cuda(const Tensor& db, const Tensor& dy) {
  cuda::require_device("channel_sum", db.device(), {&dy});
  const int64_t N = dy.size(0), C = dy.size(1), S = dy.numel() / std::max<int64_t>(N * C, 1);
  if (C == 0) return;
  if (N * C * S == 0) {
    Tensor(db).zero_();  // a handle to the same storage
    return;
  }
  const Tensor rows = empty({N * C}, dy.options());
  sum_rows_kernel(dy.device(), rows, make_view(dy, {N * C, S}, {S, 1}, dy.offset()), 1.0);
  sum_cols_kernel(dy.device(), db, make_view(rows, {N, C}, {C, 1}, rows.offset()), 1.0);
}

}  // namespace

GNDET_REGISTER_KERNEL(conv2d_forward_kernel, CUDA, conv2d_forward_cuda);
GNDET_REGISTER_KERNEL(conv2d_backward_input_kernel, CUDA, conv2d_backward_input_cuda);
GNDET_REGISTER_KERNEL(conv2d_backward_weight_kernel, CUDA, conv2d_backward_weight_cuda);
GNDET_REGISTER_KERNEL(channel_sum_kernel, CUDA, channel_sum_cuda);

}  // namespace gndet
