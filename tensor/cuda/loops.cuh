// Building blocks of the CUDA elementwise kernels (fill, copy, unary, binary, where): offsets of a
// StridedPlan, aligned vectors, and the launch helpers. One thread handles one element on the
// strided path and one 16-byte vector on the contiguous path, in grid-stride loops.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <utility>

#include "tensor/cuda/context.h"
#include "tensor/strided.h"
#include "tensor/tensor.h"

namespace gndet::cuda {

inline constexpr int kThreads = 256;

// Element offsets of linear index i (row-major over p.sizes) for the first K operands. The
// loop is unrolled over kMaxDims so that the plan, a kernel parameter, is read at constant
// offsets; Index is uint32_t when the whole plan fits (32-bit division is much cheaper).
template <int K, class Index>
__device__ __forceinline__ void plan_offsets(const StridedPlan& p, Index i, int64_t (&off)[K]) {
#pragma unroll
  for (int k = 0; k < K; ++k) off[k] = 0;
#pragma unroll
  for (int j = 0; j < kMaxDims; ++j) {
    const int d = kMaxDims - 1 - j;  // innermost first
    if (d < p.ndim) {
      const Index s = static_cast<Index>(p.sizes[d]);
      const Index q = i / s;
      const Index r = i - q * s;
#pragma unroll
      for (int k = 0; k < K; ++k) off[k] += static_cast<int64_t>(r) * p.strides[k][d];
      i = q;
    }
  }
}

// True when 32-bit linear indices cover the plan.
inline bool fits_index32(const StridedPlan& p) { return p.numel <= int64_t{0xffffffff}; }

// N elements of T, aligned so that one load or store moves them all.
template <class T, int N>
struct alignas(sizeof(T) * N) Vec {
  T v[N];
};

template <int N, class T>
inline bool is_aligned_for(const T* p) {
  return reinterpret_cast<uintptr_t>(p) % (sizeof(T) * N) == 0;
}

// Throws unless every tensor is on `device` (a kernel given a host pointer would fault).
inline void require_device(const char* op, Device device, std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors) {
    GNDET_CHECK(t->device() == device, op, ": CUDA kernel on ", device.str(), " got a tensor of shape ",
                shape_str(t->shape()), " on ", t->device().str());
  }
}

// ---- the generic elementwise kernel: out[i] = f(in[i]...) over a StridedPlan ----

template <int VEC, class F, class O, class... I>
__device__ __forceinline__ void apply_vec(const F& f, O* out, int64_t v, const Vec<I, VEC>&... x) {
  Vec<O, VEC> o;
#pragma unroll
  for (int j = 0; j < VEC; ++j) o.v[j] = f(x.v[j]...);
  reinterpret_cast<Vec<O, VEC>*>(out)[v] = o;
}

// Contiguous operands: VEC elements (16 bytes of the widest type) per access when every pointer
// is aligned for it (vec_ok), else one element at a time; the n % VEC tail is always scalar.
template <int VEC, class F, class O, class... I>
__global__ void elementwise_contiguous_kernel(int64_t n, bool vec_ok, F f, O* out, const I*... in) {
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  int64_t done = 0;
  if (vec_ok) {
    const int64_t nvec = n / VEC;
    // The loads of all inputs are function arguments, so they are all issued before any use.
    for (int64_t v = tid; v < nvec; v += stride) apply_vec<VEC>(f, out, v, reinterpret_cast<const Vec<I, VEC>*>(in)[v]...);
    done = nvec * VEC;
  }
  for (int64_t i = done + tid; i < n; i += stride) out[i] = f(in[i]...);
}

template <class F, class O, class... I, size_t... k>
__device__ __forceinline__ void apply_at(const F& f, O* out, const int64_t* off, std::index_sequence<k...>,
                                         const I*... in) {
  out[off[0]] = f(in[off[k + 1]]...);
}

template <class F, class O, class... I>
__global__ void elementwise_strided_kernel(StridedPlan p, bool index32, F f, O* out, const I*... in) {
  constexpr int K = 1 + static_cast<int>(sizeof...(I));
  const int64_t tid = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = tid; i < p.numel; i += stride) {
    int64_t off[K];
    if (index32) {
      plan_offsets<K, uint32_t>(p, static_cast<uint32_t>(i), off);
    } else {
      plan_offsets<K, int64_t>(p, i, off);
    }
    apply_at(f, out, off, std::index_sequence_for<I...>{}, in...);
  }
}

// Runs f over plan p (operand 0 = out, then the inputs in order) on `device`'s current stream.
// The caller has made `device` current (DeviceGuard).
template <class F, class O, class... I>
void launch_elementwise(const StridedPlan& p, int device, F f, O* out, const I*... in) {
  if (p.numel == 0) return;
  const cudaStream_t stream = stream_for(device);
  if (p.contiguous) {
    constexpr size_t widest = std::max({sizeof(O), sizeof(I)...});
    constexpr int VEC = static_cast<int>(16 / widest) >= 1 ? static_cast<int>(16 / widest) : 1;
    const bool vec_ok = is_aligned_for<VEC>(out) && (is_aligned_for<VEC>(in) && ...);
    const unsigned grid = grid_for(ceil_div(p.numel, VEC), kThreads, device);
    elementwise_contiguous_kernel<VEC><<<grid, kThreads, 0, stream>>>(p.numel, vec_ok, f, out, in...);
  } else {
    const unsigned grid = grid_for(p.numel, kThreads, device);
    elementwise_strided_kernel<<<grid, kThreads, 0, stream>>>(p, fits_index32(p), f, out, in...);
  }
  GNDET_CUDA_LAUNCH_CHECK();
}

}  // namespace gndet::cuda
