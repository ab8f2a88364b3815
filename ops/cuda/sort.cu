// CUDA sort and top-k (ops/sort.h) through CUB's device-wide radix sort, which is stable. To give
// the CPU's order exactly (ties by lower index, NaN largest, -0.0 equal to +0.0), each value is
// first mapped to an unsigned key whose unsigned order is that order:
//   floats: NaN -> all ones (the largest key; every NaN alike, so NaNs keep index order);
//           -0.0 -> +0.0; then the usual flip (negative: invert all bits; positive: set the sign);
//   signed integers: flip the sign bit; uint8: as is;
//   descending: the bitwise complement of the ascending key (the stable sort keeps ties in index
//   order in both directions, as the CPU comparator does).
// Rows are sorted together in one device-wide sort:
//   keys of <= 32 bits: a 64-bit composite key (row << 32 | key), one sort over row + key bits;
//   64-bit keys: sort by key, then stably by row (LSD order), two sorts.
// The values carried are global positions m * R + r; a last kernel writes the CPU kernel's
// outputs (values gathered from the input, so NaN payloads and the sign of zero are kept).
#include <bit>
#include <type_traits>

#include <cub/device/device_radix_sort.cuh>

#include "ops/sort.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/factory.h"

namespace gndet {
namespace {

template <class T>
inline constexpr bool kWideKey = sizeof(T) == 8;

template <class T>
__device__ __forceinline__ uint64_t ascending_key(T v) {
  if constexpr (std::is_same_v<T, float>) {
    if (v != v) return 0xffffffffull;
    const uint32_t u = v == 0.0f ? 0u : __float_as_uint(v);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
  } else if constexpr (std::is_same_v<T, double>) {
    if (v != v) return ~0ull;
    const uint64_t u = v == 0.0 ? 0ull : static_cast<uint64_t>(__double_as_longlong(v));
    return (u & 0x8000000000000000ull) ? ~u : (u | 0x8000000000000000ull);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return static_cast<uint64_t>(v) ^ 0x8000000000000000ull;
  } else if constexpr (std::is_same_v<T, int32_t>) {
    return static_cast<uint32_t>(v) ^ 0x80000000u;
  } else {
    static_assert(std::is_same_v<T, uint8_t>, "sort keys: unsupported type");
    return v;
  }
}

// keys[i] and positions[i] = i for the n = M * R elements; narrow keys get their row on top.
template <class T>
__global__ void make_keys_cu(const T* x, uint64_t* keys, int64_t* positions, int64_t n, int64_t R, bool descending) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    uint64_t key = ascending_key(x[i]);
    if constexpr (kWideKey<T>) {
      if (descending) key = ~key;
    } else {
      if (descending) key = ~key & (sizeof(T) == 1 ? 0xffull : 0xffffffffull);
      key |= static_cast<uint64_t>(i / R) << 32;
    }
    keys[i] = key;
    positions[i] = i;
  }
}

// keys[i] = the row of the element at positions[i] (second pass for wide keys).
__global__ void row_keys_cu(const int64_t* positions, uint64_t* keys, int64_t n, int64_t R) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    keys[i] = static_cast<uint64_t>(positions[i] / R);
  }
}

// The first k of every sorted row of R: values[m, j] = x[p], indices[m, j] = p - m * R.
template <class T>
__global__ void take_sorted_cu(const T* x, const int64_t* sorted, T* values, int64_t* indices, int64_t M, int64_t R,
                               int64_t k) {
  const int64_t n = M * k;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    const int64_t m = i / k, j = i - m * k;
    const int64_t p = sorted[m * R + j];
    values[i] = x[p];
    indices[i] = p - m * R;
  }
}

int bit_width(uint64_t v) { return static_cast<int>(std::bit_width(v)); }

// Sorts the M rows of `in` (M, R) and writes the first k of each into values / indices (M, k).
void sort_rows_into(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t k, bool descending,
                    const char* op) {
  cuda::require_device(op, in.device(), {&values, &indices});
  const int64_t M = in.size(0), R = in.size(1);
  const int64_t n = M * R;
  if (n == 0 || k == 0) return;
  GNDET_CHECK(M <= (int64_t{1} << 32), op, ": ", M, " rows: at most 2^32 on CUDA");
  const int dev = in.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  const TensorOptions u64(kInt64, in.device());  // uint64 keys live in int64 storage
  const Tensor keys_a = empty({n}, u64), keys_b = empty({n}, u64), pos_a = empty({n}, u64), pos_b = empty({n}, u64);
  uint64_t* ka = static_cast<uint64_t*>(keys_a.raw_data());
  uint64_t* kb = static_cast<uint64_t*>(keys_b.raw_data());
  int64_t* pa = static_cast<int64_t*>(pos_a.raw_data());
  int64_t* pb = static_cast<int64_t*>(pos_b.raw_data());
  const unsigned grid = cuda::grid_for(n, cuda::kThreads, dev);
  const int row_bits = bit_width(static_cast<uint64_t>(M - 1));

  dispatch_numeric(in.dtype(), op, [&]<class T>() {
    const T* x = static_cast<const T*>(in.raw_data());
    make_keys_cu<T><<<grid, cuda::kThreads, 0, stream>>>(x, ka, pa, n, R, descending);
    GNDET_CUDA_LAUNCH_CHECK();
    // (begin_bit, end_bit) of each pass; the temporary storage is sized for the largest.
    const int key_bits = kWideKey<T> ? 64 : (sizeof(T) == 1 ? 8 : 32);
    const int first_end = kWideKey<T> ? 64 : (M == 1 ? key_bits : 32 + row_bits);
    const int first_begin = 0;
    const bool second_pass = kWideKey<T> && M > 1;
    size_t temp_bytes = 0, bytes = 0;
    GNDET_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, ka, kb, pa, pb, n, first_begin, first_end, stream));
    temp_bytes = bytes;
    if (second_pass) {
      GNDET_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, bytes, ka, kb, pb, pa, n, 0, row_bits, stream));
      temp_bytes = std::max(temp_bytes, bytes);
    }
    const Tensor temp = empty({static_cast<int64_t>(std::max<size_t>(temp_bytes, 1))}, TensorOptions(kUInt8, in.device()));
    GNDET_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.raw_data(), temp_bytes, ka, kb, pa, pb, n, first_begin,
                                                     first_end, stream));
    const int64_t* sorted = pb;
    if (second_pass) {
      row_keys_cu<<<grid, cuda::kThreads, 0, stream>>>(pb, ka, n, R);
      GNDET_CUDA_LAUNCH_CHECK();
      GNDET_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(temp.raw_data(), temp_bytes, ka, kb, pb, pa, n, 0, row_bits, stream));
      sorted = pa;
    }
    take_sorted_cu<T><<<cuda::grid_for(M * k, cuda::kThreads, dev), cuda::kThreads, 0, stream>>>(
        x, sorted, static_cast<T*>(values.raw_data()), static_cast<int64_t*>(indices.raw_data()), M, R, k);
    GNDET_CUDA_LAUNCH_CHECK();
  });
}

void sort_rows_cuda(const Tensor& values, const Tensor& indices, const Tensor& in, bool descending) {
  sort_rows_into(values, indices, in, in.size(1), descending, "sort");
}

void topk_rows_cuda(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t k, bool largest) {
  sort_rows_into(values, indices, in, k, largest, "topk");
}

}  // namespace

GNDET_REGISTER_KERNEL(sort_rows_kernel, CUDA, sort_rows_cuda);
GNDET_REGISTER_KERNEL(topk_rows_kernel, CUDA, topk_rows_cuda);

}  // namespace gndet
