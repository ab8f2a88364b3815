// CUDA GroupNorm forward (ops/norm.h group_norm_kernel): statistics per (n, g), then
// y = (x - mean) * (rstd * gamma[c]) + beta[c]. The three kernel families (warp, fused,
// two_pass) and how one is chosen are described in ops/cuda/group_norm_common.cuh.
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
using cuda::gn::Moments;

__device__ __forceinline__ float inv_sqrt(float v) { return 1.0f / sqrtf(v); }  // IEEE, as the CPU's 1 / sqrt
__device__ __forceinline__ double inv_sqrt(double v) { return 1.0 / sqrt(v); }
template <class T>
__device__ __forceinline__ T clamp0(T v) {  // a variance that rounding pushed below 0
  return v > T(0) ? v : T(0);
}

// Sum of a slab (elements outside the range were loaded as 0).
template <class T, int K>
__device__ __forceinline__ T slab_sum(const T (&v)[K][kVec<T>]) {
  T s = 0;
#pragma unroll
  for (int k = 0; k < K; ++k) {
#pragma unroll
    for (int j = 0; j < kVec<T>; ++j) s += v[k][j];
  }
  return s;
}

// Sum of squared deviations from `mean` over the slab's elements inside [lo, hi).
template <class T, int K>
__device__ __forceinline__ T slab_sq_dev(const T (&v)[K][kVec<T>], T mean, int64_t lo, int64_t hi, int rank, int team) {
  T s = 0;
#pragma unroll
  for (int k = 0; k < K; ++k) {
    const int64_t e = lo + (static_cast<int64_t>(k) * team + rank) * kVec<T>;
#pragma unroll
    for (int j = 0; j < kVec<T>; ++j) {
      const T dv = v[k][j] - mean;
      if (e + j < hi) s += dv * dv;
    }
  }
  return s;
}

// Writes y for the slab's elements inside [lo, hi) of one group (yg: the group's first value).
// gamma_g / beta_g point at the group's first channel, or are null (ones / zeros).
template <class T, int K>
__device__ __forceinline__ void normalize_slab(const T (&v)[K][kVec<T>], T* __restrict__ yg, int64_t lo, int64_t hi,
                                               bool vec_ok, bool idx32, int rank, int team, int64_t S, T mu, T r,
                                               const T* __restrict__ gamma_g, const T* __restrict__ beta_g) {
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
      if (e + j < hi) {  // beyond hi cp.c may name a channel past the last one
        const T a = gamma_g != nullptr ? r * gamma_g[cp.c] : r;
        const T b = beta_g != nullptr ? beta_g[cp.c] : T(0);
        o[j] = (v[k][j] - mu) * a + b;
      }
      cp.next(S);
    }
    cuda::gn::store_vec(yg, e, hi, vec_ok, o);
  }
}

template <class T>
__device__ __forceinline__ const T* channel_ptr(const T* p, int64_t g, const Dims& d) {
  return p != nullptr ? p + g * d.Cg : nullptr;
}

// ---- warp family: one warp per group, block (32, kWarpsPerBlock) ----
template <class T>
__global__ void __launch_bounds__(kWarp* kWarpsPerBlock)
    gn_forward_warp_cu(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ mean, T* __restrict__ rstd,
                       const T* __restrict__ gamma, const T* __restrict__ beta, Dims d, T eps, bool vec_ok) {
  const int64_t ng = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (ng >= d.NG) return;  // the whole warp leaves together
  const int lane = threadIdx.x;
  T v[kWarpVecs][kVec<T>];
  cuda::gn::load_slab(x + ng * d.M, 0, d.M, vec_ok, lane, kWarp, v);
  const T n = static_cast<T>(d.M);
  // xor reductions: every lane holds the same sums, hence the same mean and rstd.
  const T mu = d.M > 0 ? cuda::warp_reduce(slab_sum(v), cuda::SumOp{}) / n : T(0);
  const T m2 = cuda::warp_reduce(slab_sq_dev(v, mu, 0, d.M, lane, kWarp), cuda::SumOp{});
  const T var = d.M > 0 ? clamp0(m2 / n) : T(0);
  const T r = inv_sqrt(var + eps);
  if (lane == 0) {
    mean[ng] = mu;
    rstd[ng] = r;
  }
  const int64_t g = ng % d.G;
  normalize_slab(v, y + ng * d.M, 0, d.M, vec_ok, true, lane, kWarp, d.S, mu, r, channel_ptr(gamma, g, d),
                 channel_ptr(beta, g, d));
}

// ---- tile families: one block per tile of kTile values; kFused finishes the tile in place ----
template <class T, bool kFused>
__global__ void __launch_bounds__(kTileThreads)
    gn_forward_tile_cu(const T* __restrict__ x, T* __restrict__ y, T* __restrict__ mean, T* __restrict__ rstd,
                       const T* __restrict__ gamma, const T* __restrict__ beta, Dims d, int64_t chunks, T eps,
                       bool vec_ok, bool idx32, int* counters, Moments<T>* partials) {
  const int64_t tile = cuda::gn::claim_tile(kFused, counters);
  const int64_t ng = tile / chunks, chunk = tile - ng * chunks;
  const int64_t lo = chunk * kTile<T>, hi = lo + kTile<T> < d.M ? lo + kTile<T> : d.M;
  T v[kVecsPerThread][kVec<T>];
  cuda::gn::load_slab(x + ng * d.M, lo, hi, vec_ok, threadIdx.x, kTileThreads, v);

  __shared__ T red[kWarp];
  const T n = static_cast<T>(hi - lo);
  const T tile_mean = cuda::block_reduce(slab_sum(v), cuda::SumOp{}, T(0), red) / n;
  const T tile_m2 =
      cuda::block_reduce(slab_sq_dev(v, tile_mean, lo, hi, threadIdx.x, kTileThreads), cuda::SumOp{}, T(0), red);
  if (threadIdx.x == 0) {
    partials[tile] = {n, tile_mean, tile_m2};
    if (kFused) cuda::gn::arrive(counters + 1 + ng);
  }
  if constexpr (kFused) {
    if (threadIdx.x == 0) cuda::gn::wait_for(counters + 1 + ng, static_cast<int>(chunks));
    __syncthreads();
    Moments<T> m{T(0), T(0), T(0)};
    for (int64_t i = threadIdx.x; i < chunks; i += kTileThreads) {
      m = cuda::gn::merge(m, cuda::gn::load_cg(partials + ng * chunks + i));
    }
    m = cuda::gn::block_merge(m);
    const T r = inv_sqrt(clamp0(m.m2 / static_cast<T>(d.M)) + eps);
    if (chunk == 0 && threadIdx.x == 0) {
      mean[ng] = m.mean;
      rstd[ng] = r;
    }
    const int64_t g = ng % d.G;
    normalize_slab(v, y + ng * d.M, lo, hi, vec_ok, idx32, threadIdx.x, kTileThreads, d.S, m.mean, r,
                   channel_ptr(gamma, g, d), channel_ptr(beta, g, d));
  }
}

// two_pass, step 2: a warp per group merges its tiles' partials.
template <class T>
__global__ void gn_forward_finalize_cu(const Moments<T>* __restrict__ partials, T* __restrict__ mean,
                                       T* __restrict__ rstd, Dims d, int64_t chunks, T eps) {
  const int64_t ng = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.y;
  if (ng >= d.NG) return;
  Moments<T> m{T(0), T(0), T(0)};
  for (int64_t i = threadIdx.x; i < chunks; i += kWarp) m = cuda::gn::merge(m, partials[ng * chunks + i]);
  m = cuda::gn::warp_merge(m);
  if (threadIdx.x == 0) {
    mean[ng] = m.mean;
    rstd[ng] = inv_sqrt(clamp0(m.m2 / static_cast<T>(d.M)) + eps);
  }
}

// two_pass, step 3: y over all N * C * S values, one vector slot of V values per thread and step.
template <class T>
__global__ void gn_forward_apply_cu(const T* __restrict__ x, T* __restrict__ y, const T* __restrict__ mean,
                                    const T* __restrict__ rstd, const T* __restrict__ gamma,
                                    const T* __restrict__ beta, Dims d, bool vec_ok) {
  constexpr int V = kVec<T>;
  const int64_t total = d.N * d.C * d.S, slots = (total + V - 1) / V;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t q = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; q < slots; q += stride) {
    const int64_t e = q * V;
    const bool whole = vec_ok && e + V <= total;
    T in[V], o[V];
    if (whole) {
      const cuda::Vec<T, V> t = *reinterpret_cast<const cuda::Vec<T, V>*>(x + e);
#pragma unroll
      for (int j = 0; j < V; ++j) in[j] = t.v[j];
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) in[j] = e + j < total ? x[e + j] : T(0);
    }
    int64_t row = e / d.S, s = e - row * d.S;  // row = n * C + c
#pragma unroll
    for (int j = 0; j < V; ++j) {
      o[j] = T(0);
      if (e + j < total) {
        const int64_t c = row % d.C, ng = row / d.Cg;
        const T r = rstd[ng];
        o[j] = (in[j] - mean[ng]) * (gamma != nullptr ? r * gamma[c] : r) + (beta != nullptr ? beta[c] : T(0));
      }
      if (++s == d.S) {
        s = 0;
        ++row;
      }
    }
    if (whole) {
      cuda::Vec<T, V> t;
#pragma unroll
      for (int j = 0; j < V; ++j) t.v[j] = o[j];
      *reinterpret_cast<cuda::Vec<T, V>*>(y + e) = t;
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) {
        if (e + j < total) y[e + j] = o[j];
      }
    }
  }
}


void group_norm_cuda(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                     const Tensor& bias, int64_t groups, double eps) {
  cuda::require_device("group_norm", x.device(), {&y, &mean, &rstd});
  if (weight.defined()) cuda::require_device("group_norm", x.device(), {&weight});
  if (bias.defined()) cuda::require_device("group_norm", x.device(), {&bias});
  const Dims d = cuda::gn::make_dims(x.size(0), x.size(1), x.size(2), groups);
  if (d.NG == 0) return;
  const int dev = x.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  dispatch_floating(x.dtype(), "group_norm", [&]<class T>() {
    const T* xp = in_ptr<T>(x);
    T* yp = static_cast<T*>(y.raw_data());
    T* mp = static_cast<T*>(mean.raw_data());
    T* rp = static_cast<T*>(rstd.raw_data());
    const T* wp = in_ptr<T>(weight);
    const T* bp = in_ptr<T>(bias);
    const T e = static_cast<T>(eps);
    const bool vec_ok = d.M % kVec<T> == 0 && cuda::gn::aligned16(xp) && cuda::gn::aligned16(yp);
    const bool idx32 = d.M <= INT_MAX;
    const int64_t chunks = cuda::ceil_div(std::max<int64_t>(d.M, 1), kTile<T>);
    const auto fused = gn_forward_tile_cu<T, true>;
    const int64_t resident = cuda::gn::resident_blocks(fused, dev, kTileThreads, 0);
    switch (cuda::gn::choose_family<T>(d, resident)) {
      case cuda::gn::Family::Warp: {
        const int64_t grid = cuda::ceil_div(d.NG, kWarpsPerBlock);
        GNDET_CHECK(grid <= INT_MAX, "group_norm: ", d.NG, " groups: too many for one launch");
        gn_forward_warp_cu<T><<<static_cast<unsigned>(grid), dim3(kWarp, kWarpsPerBlock), 0, stream>>>(
            xp, yp, mp, rp, wp, bp, d, e, vec_ok);
        GNDET_CUDA_LAUNCH_CHECK();
        return;
      }
      case cuda::gn::Family::Fused: {
        const cuda::gn::Scratch<Moments<T>> s(x.device(), stream, d.NG, d.NG * chunks);
        fused<<<static_cast<unsigned>(d.NG * chunks), kTileThreads, 0, stream>>>(xp, yp, mp, rp, wp, bp, d, chunks, e,
                                                                                  vec_ok, idx32, s.counters, s.partials);
        GNDET_CUDA_LAUNCH_CHECK();
        return;
      }
      case cuda::gn::Family::TwoPass: {
        GNDET_CHECK(d.NG * chunks <= INT_MAX, "group_norm: input of ", d.NG, " groups x ", d.M,
                    " values: too many tiles for one launch");
        const cuda::gn::Scratch<Moments<T>> s(x.device(), stream, d.NG, d.NG * chunks);
        gn_forward_tile_cu<T, false><<<static_cast<unsigned>(d.NG * chunks), kTileThreads, 0, stream>>>(
            xp, yp, mp, rp, wp, bp, d, chunks, e, vec_ok, idx32, s.counters, s.partials);
        GNDET_CUDA_LAUNCH_CHECK();
        gn_forward_finalize_cu<T><<<static_cast<unsigned>(cuda::ceil_div(d.NG, kWarpsPerBlock)),
                                    dim3(kWarp, kWarpsPerBlock), 0, stream>>>(s.partials, mp, rp, d, chunks, e);
        GNDET_CUDA_LAUNCH_CHECK();
        const bool flat_vec_ok = cuda::gn::aligned16(xp) && cuda::gn::aligned16(yp);
        const unsigned grid = cuda::grid_for(cuda::ceil_div(d.N * d.C * d.S, kVec<T>), cuda::kThreads, dev);
        gn_forward_apply_cu<T><<<grid, cuda::kThreads, 0, stream>>>(xp, yp, mp, rp, wp, bp, d, flat_vec_ok);
        GNDET_CUDA_LAUNCH_CHECK();
        return;
      }
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(group_norm_kernel, CUDA, group_norm_cuda);

}  // namespace gndet
