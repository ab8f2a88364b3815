// CUDA reduction kernels (ops/reduce.h). Floats accumulate in their own type (float32 in float,
// unlike the CPU's double) with tree reductions; integers in int64, as on the CPU.
//
// Rows of (M, R) are reduced by one warp per row when R <= 1024 (blocks of 8 rows) and by one
// 256-thread block per row otherwise. A sum over few long rows (M small, e.g. a full sum) is cut
// into chunks so that the whole GPU works: partial sums per (row, chunk) in a first kernel, then a
// warp per row adds the partials, so results are deterministic (no atomics). Column sums of
// (R, N) use 32-column x 8-row tiles, split along R the same way when N alone cannot fill the GPU.
#include <type_traits>

#include "ops/cuda/block_reduce.cuh"
#include "ops/reduce.h"
#include "tensor/cuda/context.h"
#include "tensor/factory.h"

namespace gndet {
namespace {

using cuda::kBlockThreads;
using cuda::kRowsPerBlock;
using cuda::kWarp;
using cuda::kWarpRowLimit;
using cuda::launch_rows;
template <bool kBlock>
using Team = cuda::RowTeam<kBlock>;

template <class T>
using Acc = std::conditional_t<std::is_floating_point_v<T>, T, int64_t>;

// ---- sum over rows ----

// out[m] = scale * sum of row m of x (M, R). Four accumulators keep four loads in flight.
template <bool kBlock, class In, class A, class Out>
__global__ void sum_rows_cu(const In* x, Out* out, int64_t M, int64_t R, double scale) {
  using TeamT = Team<kBlock>;
  const int64_t m = TeamT::row();
  if (m >= M) return;  // a whole warp (or block) leaves together
  const In* row = x + m * R;
  const int step = TeamT::size();
  A s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t r = TeamT::rank();
  for (; r + 3 * step < R; r += 4 * step) {
    s0 += static_cast<A>(row[r]);
    s1 += static_cast<A>(row[r + step]);
    s2 += static_cast<A>(row[r + 2 * step]);
    s3 += static_cast<A>(row[r + 3 * step]);
  }
  for (; r < R; r += step) s0 += static_cast<A>(row[r]);
  const A s = TeamT::reduce((s0 + s1) + (s2 + s3), cuda::SumOp{}, A(0));
  if (TeamT::rank() == 0) out[m] = static_cast<Out>(static_cast<double>(s) * scale);
}

// partial[m * nchunks + c] = sum of chunk c of row m; one block per (row, chunk).
template <class T, class A>
__global__ void sum_row_chunks_cu(const T* x, A* partial, int64_t R, int64_t chunk, int64_t nchunks) {
  const int64_t bid = blockIdx.x;
  const int64_t m = bid / nchunks, c = bid % nchunks;
  const int64_t r1 = (c + 1) * chunk < R ? (c + 1) * chunk : R;
  const T* row = x + m * R;
  const int step = blockDim.x;
  A s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t r = c * chunk + threadIdx.x;
  for (; r + 3 * step < r1; r += 4 * step) {
    s0 += static_cast<A>(row[r]);
    s1 += static_cast<A>(row[r + step]);
    s2 += static_cast<A>(row[r + 2 * step]);
    s3 += static_cast<A>(row[r + 3 * step]);
  }
  for (; r < r1; r += step) s0 += static_cast<A>(row[r]);
  __shared__ A shared[kWarp];
  const A s = cuda::block_reduce((s0 + s1) + (s2 + s3), cuda::SumOp{}, A(0), shared);
  if (threadIdx.x == 0) partial[bid] = s;
}

void sum_rows_cuda(const Tensor& out, const Tensor& in, double scale) {
  const int64_t M = in.size(0), R = in.size(1);
  if (M == 0) return;
  const int dev = in.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  dispatch_numeric(in.dtype(), "sum", [&]<class T>() {
    using A = Acc<T>;
    const T* x = static_cast<const T*>(in.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    // Enough blocks for 8 per SM; chunks of at least 2048 elements; partial rows a warp can sum.
    const int64_t target_blocks = int64_t{8} * cuda::num_sms(dev);
    const int64_t nchunks = std::min<int64_t>({cuda::ceil_div(target_blocks, M), cuda::ceil_div(R, 2048), kWarpRowLimit});
    if (R <= kWarpRowLimit || nchunks <= 1) {
      launch_rows(M, R, stream, sum_rows_cu<false, T, A, T>, sum_rows_cu<true, T, A, T>, x, o, M, R, scale);
      return;
    }
    const int64_t chunk = cuda::ceil_div(R, nchunks);
    const int64_t used = cuda::ceil_div(R, chunk);
    GNDET_CHECK(M * used <= 0x7fffffff, "sum: ", M, " rows x ", used, " chunks: too many blocks for one launch");
    const Tensor partial = empty({M, used}, TensorOptions(dtype_of<A>(), in.device()));
    A* pp = static_cast<A*>(partial.raw_data());
    sum_row_chunks_cu<T, A><<<static_cast<unsigned>(M * used), kBlockThreads, 0, stream>>>(x, pp, R, chunk, used);
    GNDET_CUDA_LAUNCH_CHECK();
    launch_rows(M, used, stream, sum_rows_cu<false, A, A, T>, sum_rows_cu<true, A, A, T>,
                static_cast<const A*>(pp), o, M, used, scale);
  });
}

// ---- sum over columns ----

// Tile of 32 columns x 8 thread rows; blockIdx.y picks a chunk of rows. With `final`, out[n] =
// scale * sum; else out[chunk * N + n] = the chunk's partial sum.
template <class In, class A, class Out>
__global__ void sum_cols_cu(const In* x, Out* out, int64_t R, int64_t N, int64_t rows_per_chunk, double scale,
                            bool final) {
  const int64_t n = static_cast<int64_t>(blockIdx.x) * kWarp + threadIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < R ? r0 + rows_per_chunk : R;
  A s = 0;
  if (n < N) {
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kRowsPerBlock) s += static_cast<A>(x[r * N + n]);
  }
  __shared__ A tile[kRowsPerBlock][kWarp];
  tile[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || n >= N) return;
  A total = 0;
#pragma unroll
  for (int k = 0; k < kRowsPerBlock; ++k) total += tile[k][threadIdx.x];
  if (final) {
    out[n] = static_cast<Out>(static_cast<double>(total) * scale);
  } else {
    out[static_cast<int64_t>(blockIdx.y) * N + n] = static_cast<Out>(total);
  }
}

void sum_cols_cuda(const Tensor& out, const Tensor& in, double scale) {
  const int64_t R = in.size(0), N = in.size(1);
  if (N == 0) return;
  if (N == 1) {  // an (R, 1) matrix is the (1, R) row in memory: the row kernel splits it well
    sum_rows_cuda(out, make_view(in, {1, R}, {R, 1}, in.offset()), scale);
    return;
  }
  const int dev = in.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  dispatch_numeric(in.dtype(), "sum", [&]<class T>() {
    using A = Acc<T>;
    const T* x = static_cast<const T*>(in.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    const int64_t col_blocks = cuda::ceil_div(N, kWarp);
    GNDET_CHECK(col_blocks <= 0x7fffffff, "sum: ", N, " columns: too many for one launch");
    const int64_t target_blocks = int64_t{8} * cuda::num_sms(dev);
    // Chunks of at least 64 rows; at most 1024 of them (gridDim.y and the second pass).
    const int64_t nchunks = std::min<int64_t>({cuda::ceil_div(target_blocks, col_blocks), cuda::ceil_div(R, 64), 1024});
    const dim3 block(kWarp, kRowsPerBlock);
    if (nchunks <= 1) {
      sum_cols_cu<T, A, T><<<dim3(static_cast<unsigned>(col_blocks), 1), block, 0, stream>>>(x, o, R, N, R, scale, true);
      GNDET_CUDA_LAUNCH_CHECK();
      return;
    }
    const int64_t rows_per_chunk = cuda::ceil_div(R, nchunks);
    const int64_t used = cuda::ceil_div(R, rows_per_chunk);
    const Tensor partial = empty({used, N}, TensorOptions(dtype_of<A>(), in.device()));
    A* pp = static_cast<A*>(partial.raw_data());
    sum_cols_cu<T, A, A><<<dim3(static_cast<unsigned>(col_blocks), static_cast<unsigned>(used)), block, 0, stream>>>(
        x, pp, R, N, rows_per_chunk, 1.0, false);
    GNDET_CUDA_LAUNCH_CHECK();
    sum_cols_cu<A, A, T><<<dim3(static_cast<unsigned>(col_blocks), 1), block, 0, stream>>>(pp, o, used, N, used,
                                                                                               scale, true);
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

// ---- variance over rows (two passes over the row: mean, then squared deviations) ----

template <bool kBlock, class T>
__global__ void var_rows_cu(const T* x, T* out, int64_t M, int64_t R, double ddof) {
  using TeamT = Team<kBlock>;
  const int64_t m = TeamT::row();
  if (m >= M) return;
  const T* row = x + m * R;
  const int step = TeamT::size();
  T s = 0;
  for (int64_t r = TeamT::rank(); r < R; r += step) s += row[r];
  const T mean = TeamT::reduce(s, cuda::SumOp{}, T(0)) / static_cast<T>(R);
  T ss = 0;
  for (int64_t r = TeamT::rank(); r < R; r += step) {
    const T d = row[r] - mean;
    ss += d * d;
  }
  ss = TeamT::reduce(ss, cuda::SumOp{}, T(0));
  if (TeamT::rank() == 0) out[m] = static_cast<T>(static_cast<double>(ss) / (static_cast<double>(R) - ddof));
}

void var_rows_cuda(const Tensor& out, const Tensor& in, double ddof) {
  const int64_t M = in.size(0), R = in.size(1);
  if (M == 0) return;
  const int dev = in.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_floating(in.dtype(), "var", [&]<class T>() {
    launch_rows(M, R, cuda::stream_for(dev), var_rows_cu<false, T>, var_rows_cu<true, T>,
                static_cast<const T*>(in.raw_data()), static_cast<T*>(out.raw_data()), M, R, ddof);
  });
}

// ---- max / min with the index of the first extremum; a NaN wins (the first one) ----

template <class T>
struct ArgBest {
  T v;
  int64_t i;  // -1: no element seen
};

template <class T>
__device__ __forceinline__ ArgBest<T> shfl_xor(ArgBest<T> a, int mask) {
  return {cuda::shfl_xor(a.v, mask), cuda::shfl_xor(a.i, mask)};
}

// Is a preferred over b? A total order: NaN first, then the larger (smaller) value, then the
// lower index; so the combination order of a tree reduction cannot change the answer.
template <class T>
__device__ __forceinline__ bool better(const ArgBest<T>& a, const ArgBest<T>& b, bool is_max) {
  if (a.i < 0) return false;
  if (b.i < 0) return true;
  if constexpr (std::is_floating_point_v<T>) {
    const bool na = a.v != a.v, nb = b.v != b.v;
    if (na || nb) return na && nb ? a.i < b.i : na;
  }
  if (a.v != b.v) return is_max ? a.v > b.v : a.v < b.v;
  return a.i < b.i;
}

template <class T>
struct ArgBestOp {
  bool is_max;
  __device__ ArgBest<T> operator()(const ArgBest<T>& a, const ArgBest<T>& b) const { return better(b, a, is_max) ? b : a; }
};

template <bool kBlock, class T>
__global__ void extremum_rows_cu(const T* x, T* values, int64_t* indices, int64_t M, int64_t R, bool is_max) {
  using TeamT = Team<kBlock>;
  const int64_t m = TeamT::row();
  if (m >= M) return;
  const T* row = x + m * R;
  ArgBest<T> best{T(0), -1};
  for (int64_t r = TeamT::rank(); r < R; r += TeamT::size()) {
    const ArgBest<T> cand{row[r], r};
    if (better(cand, best, is_max)) best = cand;
  }
  best = TeamT::reduce(best, ArgBestOp<T>{is_max}, ArgBest<T>{T(0), -1});
  if (TeamT::rank() == 0) {
    values[m] = best.v;
    indices[m] = best.i;
  }
}

void extremum_rows_cuda(const Tensor& values, const Tensor& indices, const Tensor& in, bool is_max) {
  const int64_t M = in.size(0), R = in.size(1);
  if (M == 0) return;
  GNDET_CHECK(R > 0, is_max ? "max" : "min", ": reduction over an empty dimension");
  const int dev = in.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_numeric(in.dtype(), is_max ? "max" : "min", [&]<class T>() {
    launch_rows(M, R, cuda::stream_for(dev), extremum_rows_cu<false, T>, extremum_rows_cu<true, T>,
                static_cast<const T*>(in.raw_data()), static_cast<T*>(values.raw_data()),
                static_cast<int64_t*>(indices.raw_data()), M, R, is_max);
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(sum_rows_kernel, CUDA, sum_rows_cuda);
GNDET_REGISTER_KERNEL(sum_cols_kernel, CUDA, sum_cols_cuda);
GNDET_REGISTER_KERNEL(var_rows_kernel, CUDA, var_rows_cuda);
GNDET_REGISTER_KERNEL(extremum_rows_kernel, CUDA, extremum_rows_cuda);

}  // namespace gndet
