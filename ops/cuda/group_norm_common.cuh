// Building blocks of the CUDA GroupNorm kernels (ops/cuda/group_norm.cu, group_norm_backward.cu).
//
// x (N, C, S) holds N * G groups of M = C/G * S contiguous values each. Three kernel families:
//
//  warp      M <= kWarpMax (box-head GN: M = 8 * 49): one warp per group keeps the group in
//            registers, reduces with shuffles and writes the result. One read, one write.
//  fused     larger groups cut into tiles of kTile values, one 256-thread block per tile holding
//            its tile in registers. Each block publishes its tile's partial statistics, waits
//            until every tile of its group has published, merges them and finishes its own tile
//            from registers: x (and dy) are read from DRAM once, which is what reaches ~90% of
//            the copy bandwidth where a stats kernel + apply kernel would read x twice (<= 67%).
//            Deadlock freedom: tiles are handed out in order by an atomic counter, not by
//            blockIdx, so when a block holds tile t every tile < t is held by a block that is
//            already running. Only the group of the newest tile can be incomplete, and its
//            blocks need at most `chunks` (tiles per group) resident slots; the launcher uses
//            this family only when chunks <= half the blocks the device can hold at once
//            (cudaOccupancyMaxActiveBlocksPerMultiprocessor), so a free slot always exists.
//  two_pass  everything else (a group of millions of values): the same tile kernel without the
//            wait writes partials, a warp per group merges them, a flat kernel applies.
//
// Statistics: each tile is reduced exactly in two passes over its registers (mean, then squared
// deviations), tiles merge by Chan et al.'s formula, all in the input type (float accumulates
// in float); variance is m2 / M, clamped at 0. Merges run in one fixed order in every block of a
// group, so all blocks (and the saved mean / rstd) agree bit for bit.
#pragma once

#include <algorithm>
#include <cstdint>

#include "ops/cuda/block_reduce.cuh"
#include "ops/cuda/tuning.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/factory.h"

namespace gndet::cuda::gn {

inline constexpr int kTileThreads = 256;
inline constexpr int kVecsPerThread = 4;                          // 16-byte vectors held per thread
template <class T>
inline constexpr int kVec = static_cast<int>(16 / sizeof(T));     // float 4, double 2
template <class T>
inline constexpr int64_t kTile = int64_t{kTileThreads} * kVecsPerThread * kVec<T>;  // float 4096, double 2048
inline constexpr int kWarpVecs = 4;                               // vectors per lane, warp family
template <class T>
inline constexpr int64_t kWarpMax = int64_t{kWarp} * kWarpVecs * kVec<T>;  // float 512, double 256
inline constexpr int kWarpsPerBlock = 8;
inline constexpr int64_t kMaxSlots = 2048;  // per-channel accumulators of one tile kept in shared memory

// Sizes of one call; M = Cg * S values per group, NG = N * G groups.
struct Dims {
  int64_t N, C, S, G, Cg, M, NG;
};

inline Dims make_dims(int64_t N, int64_t C, int64_t S, int64_t G) {
  return {N, C, S, G, C / G, C / G * S, N * G};
}

// ---- partial statistics ----

template <class T>
struct Moments {
  T n, mean, m2;  // count, mean, sum of squared deviations from the mean
};

template <class T>
__device__ __forceinline__ Moments<T> merge(const Moments<T>& a, const Moments<T>& b) {
  const T n = a.n + b.n;
  if (b.n == T(0)) return a;
  if (a.n == T(0)) return b;
  const T d = b.mean - a.mean, wb = b.n / n;
  return {n, a.mean + d * wb, a.m2 + b.m2 + d * d * a.n * wb};
}

template <class T>
__device__ __forceinline__ Moments<T> shfl_down(const Moments<T>& m, int o) {
  return {__shfl_down_sync(0xffffffffu, m.n, o), __shfl_down_sync(0xffffffffu, m.mean, o),
          __shfl_down_sync(0xffffffffu, m.m2, o)};
}

// Lane 0 ends with the merge of the warp's values (merge is not symmetric in rounding, so a
// shuffle-down tree with one owner, not a butterfly).
template <class T>
__device__ __forceinline__ Moments<T> warp_merge(Moments<T> m) {
#pragma unroll
  for (int o = kWarp / 2; o > 0; o >>= 1) {
    const Moments<T> other = shfl_down(m, o);
    if (static_cast<int>(threadIdx.x % kWarp) + o < kWarp) m = merge(m, other);
  }
  return m;
}

// Every thread of the (1-D) block gets thread 0's merge of all values.
template <class T>
__device__ __forceinline__ Moments<T> block_merge(Moments<T> m) {
  __shared__ Moments<T> shared[kWarp];
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, nwarps = blockDim.x / kWarp;
  m = warp_merge(m);
  __syncthreads();  // `shared` may still be read by a previous call
  if (lane == 0) shared[warp] = m;
  __syncthreads();
  if (warp == 0) {
    m = lane < nwarps ? shared[lane] : Moments<T>{T(0), T(0), T(0)};
    m = warp_merge(m);
    if (lane == 0) shared[0] = m;
  }
  __syncthreads();
  return shared[0];
}

// Partial sums of a tile in the backward: A = sum gamma * dy * (x - mean), B = sum gamma * dy.
template <class T>
struct Sums {
  T a, b;
};

// ---- publishing partials between the blocks of a group ----

// After the calling thread's partial is written: make it visible, then count it.
__device__ __forceinline__ void arrive(int* counter) {
  __threadfence();
  atomicAdd(counter, 1);
}

// Spins until `target` blocks have arrived; the fence orders the partial reads after it. Called
// by one thread, followed by __syncthreads(); partials are then read with __ldcg (L2, never a
// stale L1 line).
__device__ __forceinline__ void wait_for(const int* counter, int target) {
  while (*reinterpret_cast<const volatile int*>(counter) < target) __nanosleep(64);
  __threadfence();
}

template <class T>
__device__ __forceinline__ Moments<T> load_cg(const Moments<T>* p) {
  return {__ldcg(&p->n), __ldcg(&p->mean), __ldcg(&p->m2)};
}
template <class T>
__device__ __forceinline__ Sums<T> load_cg(const Sums<T>* p) {
  return {__ldcg(&p->a), __ldcg(&p->b)};
}

// The tile this block works on: handed out in launch order by an atomic counter (fused) or
// blockIdx.x (two_pass).
__device__ __forceinline__ int64_t claim_tile(bool dynamic, int* counter) {
  __shared__ int64_t tile;
  if (threadIdx.x == 0) tile = dynamic ? static_cast<int64_t>(atomicAdd(counter, 1)) : static_cast<int64_t>(blockIdx.x);
  __syncthreads();
  return tile;
}

// ---- register slabs ----

// Loads the elements of [lo, hi) (indices relative to `base`) that belong to this thread: its
// vector k covers [lo + (k * team + rank) * V, + V). Elements outside [lo, hi) read as 0.
// vec_ok: base is 16-byte aligned and every boundary a multiple of V, so a vector is either
// wholly inside or wholly outside.
template <class T, int K>
__device__ __forceinline__ void load_slab(const T* __restrict__ base, int64_t lo, int64_t hi, bool vec_ok, int rank,
                                          int team, T (&v)[K][kVec<T>]) {
  constexpr int V = kVec<T>;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int64_t e = lo + (static_cast<int64_t>(k) * team + rank) * V;
    if (vec_ok) {
      if (e < hi) {
        const Vec<T, V> q = *reinterpret_cast<const Vec<T, V>*>(base + e);
#pragma unroll
        for (int j = 0; j < V; ++j) v[k][j] = q.v[j];
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) v[k][j] = T(0);
      }
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) v[k][j] = e + j < hi ? base[e + j] : T(0);
    }
  }
}

template <class T>
__device__ __forceinline__ void store_vec(T* __restrict__ base, int64_t e, int64_t hi, bool vec_ok, const T (&o)[kVec<T>]) {
  constexpr int V = kVec<T>;
  if (vec_ok) {
    Vec<T, V> q;
#pragma unroll
    for (int j = 0; j < V; ++j) q.v[j] = o[j];
    *reinterpret_cast<Vec<T, V>*>(base + e) = q;
  } else {
#pragma unroll
    for (int j = 0; j < V; ++j) {
      if (e + j < hi) base[e + j] = o[j];
    }
  }
}

// Channel (within the group) and position of group element e; 32-bit division when M fits.
struct ChannelPos {
  int64_t c, s;
  // The next element: s + 1, wrapping into the next channel.
  __device__ __forceinline__ void next(int64_t S) {
    if (++s == S) {
      s = 0;
      ++c;
    }
  }
};
__device__ __forceinline__ ChannelPos channel_of(int64_t e, int64_t S, bool idx32) {
  if (idx32) {
    const uint32_t c = static_cast<uint32_t>(e) / static_cast<uint32_t>(S);
    return {static_cast<int64_t>(c), e - static_cast<int64_t>(c) * S};
  }
  const int64_t c = e / S;
  return {c, e - c * S};
}

// ---- the launcher's side ----

// Resident blocks of `kernel` over the whole device at (threads, smem): the fused family's bound.
template <class Kernel>
int64_t resident_blocks(Kernel kernel, int device, int threads, size_t smem) {
  int per_sm = 0;
  GNDET_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, threads, smem));
  return static_cast<int64_t>(per_sm) * num_sms(device);
}

enum class Family { Warp, Fused, TwoPass };

// The family for groups of M values (see the header comment); `resident` is the fused kernel's
// resident_blocks. A forced choice (tuning.h) that cannot run this shape falls back.
template <class T>
Family choose_family(const Dims& d, int64_t resident) {
  const int64_t chunks = ceil_div(std::max<int64_t>(d.M, 1), kTile<T>);
  const bool fused_ok = 2 * chunks <= resident && d.NG * chunks <= 0x7fffffff;
  const Family auto_choice = d.M <= kWarpMax<T> ? Family::Warp : (fused_ok ? Family::Fused : Family::TwoPass);
  switch (group_norm_algo()) {
    case GroupNormAlgo::Warp: return d.M <= kWarpMax<T> ? Family::Warp : auto_choice;
    case GroupNormAlgo::Fused: return fused_ok && d.M > 0 ? Family::Fused : auto_choice;
    case GroupNormAlgo::TwoPass: return d.M > 0 ? Family::TwoPass : auto_choice;
    case GroupNormAlgo::Auto: break;
  }
  return auto_choice;
}

// Scratch of the tile families, from the caching allocator: an int counter block (the tile
// counter, then one arrival counter per group), zeroed on the stream, and the partials.
template <class P>
struct Scratch {
  Tensor buf;
  int* counters = nullptr;
  P* partials = nullptr;

  Scratch(Device device, cudaStream_t stream, int64_t groups, int64_t partial_count) {
    const int64_t counter_bytes = ceil_div((1 + groups) * static_cast<int64_t>(sizeof(int)), 256) * 256;
    buf = empty({counter_bytes + partial_count * static_cast<int64_t>(sizeof(P))}, TensorOptions(kUInt8, device));
    char* base = static_cast<char*>(buf.raw_data());
    counters = reinterpret_cast<int*>(base);
    partials = reinterpret_cast<P*>(base + counter_bytes);
    GNDET_CUDA_CHECK(cudaMemsetAsync(counters, 0, static_cast<size_t>(counter_bytes), stream));
  }
};

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

}  // namespace gndet::cuda::gn
