// CUDA GroupNorm backward (ops/norm.h group_norm_backward_kernel), with xc = x - mean of (n, g):
//   dx = rstd * gamma[c] * dy + c2 * xc + c3,
//   c2 = -rstd^3 / M * A,  A = sum over the group of gamma[c] * dy * xc
//   c3 = -rstd / M * B,    B = sum over the group of gamma[c] * dy
//   dgamma[c] = sum over n, s of dy * xc * rstd,   dbeta[c] = sum over n, s of dy
// (the CPU kernel's formulas, with its per-channel sums folded into A and B). Same kernel
// families as the forward (ops/cuda/group_norm_common.cuh): dy and x are read from DRAM once.
//
// dgamma / dbeta: every block reduces its part of each channel (in registers when its tile lies
// in one channel, else over each warp's vectors and then in shared-memory slots) and adds it to
// the outputs with one atomicAdd per channel it touched, so their last bits depend on the order blocks finish (they are not
// bit-reproducible run to run); dx is: A and B merge in a fixed order.
#include <climits>

#include "ops/cuda/group_norm_common.cuh"
#include "ops/kernel_util.h"
#include "ops/norm.h"

namespace gndet {
namespace {

using cuda::kWarp;
using cuda::gn::ChannelPos;
using cuda::gn::Dims;
using cuda::gn::kTile;
using cuda::gn::kTileThreads;
using cuda::gn::kVec;
using cuda::gn::kVecsPerThread;
using cuda::gn::kWarpsPerBlock;
using cuda::gn::kWarpVecs;
using cuda::gn::Sums;

// Where per-channel sums go. vector(c, p, q) receives one vector slot's sums from every lane of
// a warp at once (c = -1: the lane had no element there); element(c, p, q) receives the rare
// element of a vector that lies past a channel edge. Channels are relative to the group.

// A vector slot's sums combined over the warp when all its lanes are in one channel (large S:
// almost always), so one lane, not 32, updates the target; else each lane updates its own.
template <class T, class Add>
__device__ __forceinline__ void warp_aggregated(int64_t c, T p, T q, const Add& add) {
  const int64_t c0 = __shfl_sync(0xffffffffu, c, 0);
  if (__all_sync(0xffffffffu, c == c0 || c < 0)) {
    if (c0 < 0) return;  // lane 0 idle: the whole warp is (elements ascend with the lane)
    p = cuda::warp_reduce(p, cuda::SumOp{});
    q = cuda::warp_reduce(q, cuda::SumOp{});
    if (threadIdx.x % cuda::kWarp == 0) add(c0, p, q);
  } else if (c >= 0) {
    add(c, p, q);
  }
}

template <class T>
struct SlotAdd {  // shared-memory slots[c - c0]
  T* sp;
  T* sq;
  int64_t c0;
  __device__ void operator()(int64_t c, T p, T q) const {
    atomicAdd(sp + (c - c0), p);
    atomicAdd(sq + (c - c0), q);
  }
};
template <class T>
struct GlobalAdd {  // straight into dgamma / dbeta of the group's channels
  T* dgamma_g;
  T* dbeta_g;
  T r;
  __device__ void operator()(int64_t c, T p, T q) const {
    if (dgamma_g != nullptr) atomicAdd(dgamma_g + c, p * r);
    if (dbeta_g != nullptr) atomicAdd(dbeta_g + c, q);
  }
};
template <class T, class Add>
struct WarpFlush {
  Add add;
  __device__ void vector(int64_t c, T p, T q) const { warp_aggregated(c, p, q, add); }
  __device__ void element(int64_t c, T p, T q) const { add(c, p, q); }
};
template <class T>
struct LocalFlush {  // a tile inside one channel: this thread's sums, reduced over the block later
  T* p_acc;
  T* q_acc;
  __device__ void vector(int64_t c, T p, T q) const {
    if (c >= 0) element(c, p, q);
  }
  __device__ void element(int64_t, T p, T q) const {
    *p_acc += p;
    *q_acc += q;
  }
};
template <class T>
struct NoFlush {
  __device__ void vector(int64_t, T, T) const {}
  __device__ void element(int64_t, T, T) const {}
};

// Over the slab's elements inside [lo, hi): turns x into xc in place, adds this thread's share
// of A and B, and hands the per-channel sums (dy * xc, dy) of each vector slot to `flush`.
// Called by whole warps: the loop over slots is uniform and flush.vector may use warp collectives.
template <class T, int K, class Flush>
__device__ __forceinline__ void backward_slab(const T (&g)[K][kVec<T>], T (&v)[K][kVec<T>], int64_t lo, int64_t hi,
                                              bool idx32, int rank, int team, int64_t S, T mu,
                                              const T* __restrict__ gamma_g, T& A, T& B, const Flush& flush) {
  constexpr int V = kVec<T>;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int64_t e = lo + (static_cast<int64_t>(k) * team + rank) * V;
    int64_t c_vec = -1;  // the channel of the slot's first element
    T p = 0, q = 0;
    if (e < hi) {
      ChannelPos cp = cuda::gn::channel_of(e, S, idx32);
      c_vec = cp.c;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        if (e + j < hi) {
          const T xc = v[k][j] - mu;
          v[k][j] = xc;
          const T gd = gamma_g != nullptr ? gamma_g[cp.c] * g[k][j] : g[k][j];
          A += gd * xc;
          B += gd;
          if (cp.c == c_vec) {
            p += g[k][j] * xc;
            q += g[k][j];
          } else {  // past a channel edge inside the vector (S % V != 0 or S < V)
            flush.element(cp.c, g[k][j] * xc, g[k][j]);
          }
        }
        cp.next(S);
      }
    }
    flush.vector(c_vec, p, q);
  }
}

// dx for the slab's elements inside [lo, hi) (v holds xc).
template <class T, int K>
__device__ __forceinline__ void dx_slab(const T (&g)[K][kVec<T>], const T (&v)[K][kVec<T>], T* __restrict__ dxg,
                                        int64_t lo, int64_t hi, bool vec_ok, bool idx32, int rank, int team,
                                        int64_t S, T r, const T* __restrict__ gamma_g, T c2, T c3) {
  constexpr int V = kVec<T>;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int64_t e = lo + (static_cast<int64_t>(k) * team + rank) * V;
    if (e >= hi) continue;
    ChannelPos cp = cuda::gn::channel_of(e, S, idx32);
    T o[V];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      o[j] = T(0);
      if (e + j < hi) {
        const T c1 = gamma_g != nullptr ? r * gamma_g[cp.c] : r;
        o[j] = c1 * g[k][j] + c2 * v[k][j] + c3;
      }
      cp.next(S);
    }
    cuda::gn::store_vec(dxg, e, hi, vec_ok, o);
  }
}

template <class T>
__device__ __forceinline__ T* channel_ptr(T* p, int64_t g, const Dims& d) {
  return p != nullptr ? p + g * d.Cg : nullptr;
}

// ---- warp family: one warp per group; per-channel slots in dynamic shared memory (2 * Cg per warp) ----
template <class T>
__global__ void __launch_bounds__(kWarp* kWarpsPerBlock)
    gn_backward_warp_cu(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ mean,
                        const T* __restrict__ rstd, const T* __restrict__ gamma, T* __restrict__ dx, T* dgamma,
                        T* dbeta, Dims d, bool vec_ok) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t ng = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (ng >= d.NG) return;  // the whole warp leaves together; only __syncwarp below
  const int lane = threadIdx.x;
  const int64_t g = ng % d.G;
  T gr[kWarpVecs][kVec<T>], v[kWarpVecs][kVec<T>];
  cuda::gn::load_slab(dy + ng * d.M, 0, d.M, vec_ok, lane, kWarp, gr);
  cuda::gn::load_slab(x + ng * d.M, 0, d.M, vec_ok, lane, kWarp, v);
  const T mu = mean[ng], r = rstd[ng];
  const T* gamma_g = gamma != nullptr ? gamma + g * d.Cg : nullptr;
  T A = 0, B = 0;
  if (dgamma != nullptr || dbeta != nullptr) {
    T* sp = reinterpret_cast<T*>(smem_raw) + threadIdx.y * 2 * d.Cg;
    T* sq = sp + d.Cg;
    for (int64_t i = lane; i < 2 * d.Cg; i += kWarp) sp[i] = T(0);
    __syncwarp();
    backward_slab(gr, v, 0, d.M, true, lane, kWarp, d.S, mu, gamma_g, A, B, WarpFlush<T, SlotAdd<T>>{{sp, sq, 0}});
    __syncwarp();
    T* dgamma_g = channel_ptr(dgamma, g, d);
    T* dbeta_g = channel_ptr(dbeta, g, d);
    for (int64_t c = lane; c < d.Cg; c += kWarp) {
      if (dgamma_g != nullptr) atomicAdd(dgamma_g + c, sp[c] * r);
      if (dbeta_g != nullptr) atomicAdd(dbeta_g + c, sq[c]);
    }
  } else {
    backward_slab(gr, v, 0, d.M, true, lane, kWarp, d.S, mu, gamma_g, A, B, NoFlush<T>{});
  }
  if (dx == nullptr) return;
  A = cuda::warp_reduce(A, cuda::SumOp{});  // xor: the same value in every lane
  B = cuda::warp_reduce(B, cuda::SumOp{});
  const T inv_m = T(1) / static_cast<T>(d.M);
  dx_slab(gr, v, dx + ng * d.M, 0, d.M, vec_ok, true, lane, kWarp, d.S, r, gamma_g, -r * r * r * A * inv_m,
          -r * B * inv_m);
}

// ---- tile families; dynamic shared memory: 2 * slot_cap per-channel slots ----
template <class T, bool kFused>
__global__ void __launch_bounds__(kTileThreads)
    gn_backward_tile_cu(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ mean,
                        const T* __restrict__ rstd, const T* __restrict__ gamma, T* __restrict__ dx, T* dgamma,
                        T* dbeta, Dims d, int64_t chunks, bool vec_ok, bool idx32, int64_t slot_cap, int* counters,
                        Sums<T>* partials) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int64_t tile = cuda::gn::claim_tile(kFused, counters);
  const int64_t ng = tile / chunks, chunk = tile - ng * chunks;
  const int64_t lo = chunk * kTile<T>, hi = lo + kTile<T> < d.M ? lo + kTile<T> : d.M;
  const int64_t g = ng % d.G;
  T gr[kVecsPerThread][kVec<T>], v[kVecsPerThread][kVec<T>];
  cuda::gn::load_slab(dy + ng * d.M, lo, hi, vec_ok, threadIdx.x, kTileThreads, gr);
  cuda::gn::load_slab(x + ng * d.M, lo, hi, vec_ok, threadIdx.x, kTileThreads, v);
  const T mu = mean[ng], r = rstd[ng];
  const T* gamma_g = gamma != nullptr ? gamma + g * d.Cg : nullptr;
  T* dgamma_g = channel_ptr(dgamma, g, d);
  T* dbeta_g = channel_ptr(dbeta, g, d);
  __shared__ T red[kWarp];
  T A = 0, B = 0;
  // The branches below depend only on the tile: uniform over the block.
  const int64_t c_first = lo / d.S, c_last = (hi - 1) / d.S;
  if (dgamma_g == nullptr && dbeta_g == nullptr) {
    backward_slab(gr, v, lo, hi, idx32, threadIdx.x, kTileThreads, d.S, mu, gamma_g, A, B, NoFlush<T>{});
  } else if (c_first == c_last) {
    T P = 0, Q = 0;
    backward_slab(gr, v, lo, hi, idx32, threadIdx.x, kTileThreads, d.S, mu, gamma_g, A, B, LocalFlush<T>{&P, &Q});
    P = cuda::block_reduce(P, cuda::SumOp{}, T(0), red);
    Q = cuda::block_reduce(Q, cuda::SumOp{}, T(0), red);
    if (threadIdx.x == 0) GlobalAdd<T>{dgamma_g, dbeta_g, r}(c_first, P, Q);
  } else if (c_last - c_first + 1 <= slot_cap) {
    const int64_t nslots = c_last - c_first + 1;
    T* sp = reinterpret_cast<T*>(smem_raw);
    T* sq = sp + slot_cap;
    for (int64_t i = threadIdx.x; i < nslots; i += kTileThreads) sp[i] = sq[i] = T(0);
    __syncthreads();
    backward_slab(gr, v, lo, hi, idx32, threadIdx.x, kTileThreads, d.S, mu, gamma_g, A, B,
                  WarpFlush<T, SlotAdd<T>>{{sp, sq, c_first}});
    __syncthreads();
    for (int64_t i = threadIdx.x; i < nslots; i += kTileThreads) {
      GlobalAdd<T>{dgamma_g, dbeta_g, r}(c_first + i, sp[i], sq[i]);
    }
  } else {
    backward_slab(gr, v, lo, hi, idx32, threadIdx.x, kTileThreads, d.S, mu, gamma_g, A, B,
                  WarpFlush<T, GlobalAdd<T>>{{dgamma_g, dbeta_g, r}});
  }
  if (dx == nullptr) return;
  A = cuda::block_reduce(A, cuda::SumOp{}, T(0), red);
  B = cuda::block_reduce(B, cuda::SumOp{}, T(0), red);
  if (threadIdx.x == 0) {
    partials[tile] = {A, B};
    if (kFused) cuda::gn::arrive(counters + 1 + ng);
  }
  if constexpr (kFused) {
    if (threadIdx.x == 0) cuda::gn::wait_for(counters + 1 + ng, static_cast<int>(chunks));
    __syncthreads();
    T a = 0, b = 0;
    for (int64_t i = threadIdx.x; i < chunks; i += kTileThreads) {
      const Sums<T> s = cuda::gn::load_cg(partials + ng * chunks + i);
      a += s.a;
      b += s.b;
    }
    // Butterfly sums: every thread (and every block of the group) gets the same totals.
    a = cuda::block_reduce(a, cuda::SumOp{}, T(0), red);
    b = cuda::block_reduce(b, cuda::SumOp{}, T(0), red);
    const T inv_m = T(1) / static_cast<T>(d.M);
    dx_slab(gr, v, dx + ng * d.M, lo, hi, vec_ok, idx32, threadIdx.x, kTileThreads, d.S, r, gamma_g,
            -r * r * r * a * inv_m, -r * b * inv_m);
  }
}

// two_pass, step 2: c2, c3 per group from the tiles' partial sums (a warp per group).
template <class T>
__global__ void gn_backward_finalize_cu(const Sums<T>* __restrict__ partials, const T* __restrict__ rstd,
                                        Sums<T>* __restrict__ coef, Dims d, int64_t chunks) {
  const int64_t ng = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (ng >= d.NG) return;
  T a = 0, b = 0;
  for (int64_t i = threadIdx.x; i < chunks; i += kWarp) {
    a += partials[ng * chunks + i].a;
    b += partials[ng * chunks + i].b;
  }
  a = cuda::warp_reduce(a, cuda::SumOp{});
  b = cuda::warp_reduce(b, cuda::SumOp{});
  if (threadIdx.x == 0) {
    const T r = rstd[ng], inv_m = T(1) / static_cast<T>(d.M);
    coef[ng] = {-r * r * r * a * inv_m, -r * b * inv_m};
  }
}

// two_pass, step 3: dx over all N * C * S values.
template <class T>
__global__ void gn_backward_apply_cu(const T* __restrict__ dy, const T* __restrict__ x, const T* __restrict__ mean,
                                     const T* __restrict__ rstd, const T* __restrict__ gamma,
                                     const Sums<T>* __restrict__ coef, T* __restrict__ dx, Dims d) {
  const int64_t total = d.N * d.C * d.S;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    const int64_t row = i / d.S, c = row % d.C, ng = row / d.Cg;
    const T r = rstd[ng];
    const T c1 = gamma != nullptr ? r * gamma[c] : r;
    const Sums<T> k = coef[ng];
    dx[i] = c1 * dy[i] + k.a * (x[i] - mean[ng]) + k.b;
  }
}


void group_norm_backward_cuda(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                              const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                              int64_t groups) {
  const char* op = "group_norm_backward";
  cuda::require_device(op, x.device(), {&dy, &mean, &rstd});
  for (const Tensor* t : {&dx, &dweight, &dbias, &weight}) {
    if (t->defined()) cuda::require_device(op, x.device(), {t});
  }
  const Dims d = cuda::gn::make_dims(x.size(0), x.size(1), x.size(2), groups);
  const int dev = x.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  dispatch_floating(x.dtype(), op, [&]<class T>() {
    T* dxp = out_ptr<T>(dx);
    T* dgp = out_ptr<T>(dweight);
    T* dbp = out_ptr<T>(dbias);
    // dweight / dbias accumulate by atomics: start from 0 (also the answer when there is no data).
    if (dgp != nullptr) GNDET_CUDA_CHECK(cudaMemsetAsync(dgp, 0, dweight.numel() * sizeof(T), stream));
    if (dbp != nullptr) GNDET_CUDA_CHECK(cudaMemsetAsync(dbp, 0, dbias.numel() * sizeof(T), stream));
    if (d.NG == 0 || d.M == 0 || (dxp == nullptr && dgp == nullptr && dbp == nullptr)) return;
    const T* dyp = in_ptr<T>(dy);
    const T* xp = in_ptr<T>(x);
    const T* mp = in_ptr<T>(mean);
    const T* rp = in_ptr<T>(rstd);
    const T* wp = in_ptr<T>(weight);
    const bool vec_ok = d.M % kVec<T> == 0 && cuda::gn::aligned16(dyp) && cuda::gn::aligned16(xp) &&
                        (dxp == nullptr || cuda::gn::aligned16(dxp));
    const bool idx32 = d.M <= INT_MAX;
    const int64_t chunks = cuda::ceil_div(d.M, kTile<T>);
    const bool sums = dgp != nullptr || dbp != nullptr;
    // Channels one tile can touch (+2: a partial channel at each end), at most kMaxSlots.
    const int64_t slot_cap = std::min({d.Cg, kTile<T> / d.S + 2, cuda::gn::kMaxSlots});
    const size_t tile_smem = sums ? static_cast<size_t>(2 * slot_cap) * sizeof(T) : 0;
    const auto fused = gn_backward_tile_cu<T, true>;
    const int64_t resident = cuda::gn::resident_blocks(fused, dev, kTileThreads, tile_smem);
    switch (cuda::gn::choose_family<T>(d, resident)) {
      case cuda::gn::Family::Warp: {
        const int64_t grid = cuda::ceil_div(d.NG, kWarpsPerBlock);
        GNDET_CHECK(grid <= INT_MAX, op, ": ", d.NG, " groups: too many for one launch");
        const size_t smem = sums ? static_cast<size_t>(kWarpsPerBlock * 2 * d.Cg) * sizeof(T) : 0;
        gn_backward_warp_cu<T><<<static_cast<unsigned>(grid), dim3(kWarp, kWarpsPerBlock), smem, stream>>>(
            dyp, xp, mp, rp, wp, dxp, dgp, dbp, d, vec_ok);
        GNDET_CUDA_LAUNCH_CHECK();
        return;
      }
      case cuda::gn::Family::Fused: {
        const cuda::gn::Scratch<Sums<T>> s(x.device(), stream, d.NG, d.NG * chunks);
        fused<<<static_cast<unsigned>(d.NG * chunks), kTileThreads, tile_smem, stream>>>(
            dyp, xp, mp, rp, wp, dxp, dgp, dbp, d, chunks, vec_ok, idx32, slot_cap, s.counters, s.partials);
        GNDET_CUDA_LAUNCH_CHECK();
        return;
      }
      case cuda::gn::Family::TwoPass: {
        GNDET_CHECK(d.NG * chunks <= INT_MAX, op, ": input of ", d.NG, " groups x ", d.M,
                    " values: too many tiles for one launch");
        // Partials, then the per-group coefficients behind them.
        const cuda::gn::Scratch<Sums<T>> s(x.device(), stream, d.NG, d.NG * chunks + d.NG);
        gn_backward_tile_cu<T, false><<<static_cast<unsigned>(d.NG * chunks), kTileThreads, tile_smem, stream>>>(
            dyp, xp, mp, rp, wp, dxp, dgp, dbp, d, chunks, vec_ok, idx32, slot_cap, s.counters, s.partials);
        GNDET_CUDA_LAUNCH_CHECK();
        if (dxp == nullptr) return;
        Sums<T>* coef = s.partials + d.NG * chunks;
        gn_backward_finalize_cu<T><<<static_cast<unsigned>(cuda::ceil_div(d.NG, kWarpsPerBlock)),
                                     dim3(kWarp, kWarpsPerBlock), 0, stream>>>(s.partials, rp, coef, d, chunks);
        GNDET_CUDA_LAUNCH_CHECK();
        const unsigned grid = cuda::grid_for(d.N * d.C * d.S, cuda::kThreads, dev);
        gn_backward_apply_cu<T><<<grid, cuda::kThreads, 0, stream>>>(dyp, xp, mp, rp, wp, coef, dxp, d);
        GNDET_CUDA_LAUNCH_CHECK();
        return;
      }
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(group_norm_backward_kernel, CUDA, group_norm_backward_cuda);

}  // namespace gndet
