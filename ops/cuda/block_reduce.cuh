// Warp and block reductions for the row kernels (reduce, softmax). Two layouts:
//  - warp per row: blocks of (32, kRowsPerBlock) threads, lane = threadIdx.x, row from threadIdx.y;
//  - block per row: 1-D blocks of kBlockThreads threads.
// The reductions use xor shuffles, so every lane ends with the result.
#pragma once

#include <cstdint>
#include <type_traits>

#include "tensor/cuda/context.h"
#include "tensor/error.h"

namespace gndet::cuda {

inline constexpr int kWarp = 32;
inline constexpr int kRowsPerBlock = 8;    // warps per block in the warp-per-row layout
inline constexpr int kBlockThreads = 256;  // threads per block in the block-per-row layout
inline constexpr int64_t kWarpRowLimit = 1024;  // longest row given to a single warp

// __shfl_xor_sync has no overloads for 1- and 2-byte types: they travel as int.
template <class T>
__device__ __forceinline__ T shfl_xor(T v, int mask) {
  if constexpr (sizeof(T) < 4) {
    return static_cast<T>(__shfl_xor_sync(0xffffffffu, static_cast<int>(v), mask));
  } else {
    return __shfl_xor_sync(0xffffffffu, v, mask);
  }
}

struct SumOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return a + b; }
};
// fmax-style max: a NaN loses to a number. Callers that need NaN semantics handle them apart.
struct MaxOp {
  template <class T>
  __device__ T operator()(T a, T b) const { return b > a ? b : a; }
};

template <class T, class Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
#pragma unroll
  for (int m = kWarp / 2; m > 0; m >>= 1) v = op(v, shfl_xor(v, m));
  return v;
}

// All threads of a 1-D block (blockDim.x a multiple of 32) must call it; every thread gets the
// result. `shared` holds 32 values; `identity` fills the lanes beyond the number of warps.
template <class T, class Op>
__device__ __forceinline__ T block_reduce(T v, Op op, T identity, T* shared) {
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, nwarps = blockDim.x / kWarp;
  v = warp_reduce(v, op);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  v = lane < nwarps ? shared[lane] : identity;
  return warp_reduce(v, op);  // every warp reduces the partials: no third barrier needed
}

// The threads that share one row: a warp (kBlock = false) or the whole block (kBlock = true).
template <bool kBlock>
struct RowTeam {
  __device__ static int rank() { return threadIdx.x; }
  __device__ static int size() { return kBlock ? blockDim.x : kWarp; }
  __device__ static int64_t row() {
    return kBlock ? static_cast<int64_t>(blockIdx.x) : static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  }
  template <class T, class Op>
  __device__ static T reduce(T v, Op op, T identity) {
    if constexpr (kBlock) {
      __shared__ T shared[kWarp];
      return block_reduce(v, op, identity, shared);
    } else {
      return warp_reduce(v, op);
    }
  }
};

// Launches a row kernel in the layout that fits rows of R: warp_kernel (RowTeam<false>) with a
// (32, kRowsPerBlock) block per 8 rows, or block_kernel (RowTeam<true>) with a block per row.
template <class KernelW, class KernelB, class... Args>
void launch_rows(int64_t M, int64_t R, cudaStream_t stream, KernelW warp_kernel, KernelB block_kernel, Args... args) {
  if (M == 0) return;
  if (R <= kWarpRowLimit) {
    const int64_t grid = ceil_div(M, kRowsPerBlock);
    GNDET_CHECK(grid <= 0x7fffffff, "row kernel over ", M, " rows: too many for one launch");
    warp_kernel<<<static_cast<unsigned>(grid), dim3(kWarp, kRowsPerBlock), 0, stream>>>(args...);
  } else {
    GNDET_CHECK(M <= 0x7fffffff, "row kernel over ", M, " rows: too many for one launch");
    block_kernel<<<static_cast<unsigned>(M), kBlockThreads, 0, stream>>>(args...);
  }
  GNDET_CUDA_LAUNCH_CHECK();
}

}  // namespace gndet::cuda
