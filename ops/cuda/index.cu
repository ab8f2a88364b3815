// CUDA kernels for indexing (ops/index.h): one thread per output (or source) element over the
// (outer, dim, inner) geometry, atomicAdd for the accumulating ops, and CUB's select for nonzero.
//
// Bad indices: a kernel cannot throw, so the first thread that meets an out-of-range index notes it
// in the device error flag of ops/cuda/error_flag.cuh; the launcher reads it back after the kernel
// and raises the same gndet::Error as the CPU kernel (one stream synchronisation per indexing op,
// the price of an error that names the index instead of corrupting memory).
#include <thrust/iterator/counting_iterator.h>

#include <cub/device/device_select.cuh>

#include "ops/cuda/error_flag.cuh"
#include "ops/index.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/factory.h"

namespace gndet {
namespace {

// atomicAdd for every numeric dtype. uint8 has no hardware atomic: a compare-and-swap on the
// aligned 32-bit word that holds the byte (the word lies inside the allocation, whose blocks are
// 512-byte aligned and sized).
__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int32_t* p, int32_t v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int64_t* p, int64_t v) {
  // Two's complement: adding the unsigned bit patterns is the signed sum.
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}
__device__ __forceinline__ void atomic_add(uint8_t* p, uint8_t v) {
  const uintptr_t addr = reinterpret_cast<uintptr_t>(p);
  unsigned int* word = reinterpret_cast<unsigned int*>(addr & ~uintptr_t{3});
  const unsigned shift = static_cast<unsigned>(addr & 3) * 8;
  unsigned int old = *word, assumed;
  do {
    assumed = old;
    const unsigned sum = ((assumed >> shift) + v) & 0xffu;
    old = atomicCAS(word, assumed, (assumed & ~(0xffu << shift)) | (sum << shift));
  } while (assumed != old);
}

template <class T, class I>
__global__ void gather_cu(T* out, const T* src, const I* idx, IndexGeometry g, int64_t total, cuda::ErrorSlot bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t pos = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; pos < total; pos += stride) {
    const int64_t n = pos % g.inner, a = pos / g.inner / g.idx_dim;
    const int64_t k = static_cast<int64_t>(idx[pos]);
    if (k < 0 || k >= g.src_dim) {
      bad.note(k, pos);
      continue;
    }
    out[pos] = src[(a * g.src_dim + k) * g.inner + n];
  }
}

template <class T, class I>
__global__ void index_select_cu(T* out, const T* src, const I* idx, IndexGeometry g, int64_t total, cuda::ErrorSlot bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t pos = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; pos < total; pos += stride) {
    const int64_t n = pos % g.inner, t = pos / g.inner;
    const int64_t i = t % g.idx_dim, a = t / g.idx_dim;
    const int64_t k = static_cast<int64_t>(idx[i]);
    if (k < 0 || k >= g.src_dim) {
      bad.note(k, pos);
      continue;
    }
    out[pos] = src[(a * g.src_dim + k) * g.inner + n];
  }
}

// src and idx share the (outer, idx_dim, inner) geometry; out has (outer, src_dim, inner).
template <class T, class I>
__global__ void scatter_add_cu(T* out, const I* idx, const T* src, IndexGeometry g, int64_t total, cuda::ErrorSlot bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t pos = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; pos < total; pos += stride) {
    const int64_t n = pos % g.inner, a = pos / g.inner / g.idx_dim;
    const int64_t k = static_cast<int64_t>(idx[pos]);
    if (k < 0 || k >= g.src_dim) {
      bad.note(k, pos);
      continue;
    }
    atomic_add(out + (a * g.src_dim + k) * g.inner + n, src[pos]);
  }
}

template <class T, class I>
__global__ void index_add_cu(T* out, const I* idx, const T* src, IndexGeometry g, int64_t total, cuda::ErrorSlot bad) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t pos = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; pos < total; pos += stride) {
    const int64_t n = pos % g.inner, t = pos / g.inner;
    const int64_t i = t % g.idx_dim, a = t / g.idx_dim;
    const int64_t k = static_cast<int64_t>(idx[i]);
    if (k < 0 || k >= g.src_dim) {
      bad.note(k, pos);
      continue;
    }
    atomic_add(out + (a * g.src_dim + k) * g.inner + n, src[pos]);
  }
}

// Runs `launch(grid, stream, slot)` for `total` threads' worth of work and raises on a bad index.
template <class Launch>
void run_indexed(const char* op, const Tensor& out, int64_t total, int64_t src_dim, Launch launch) {
  if (total == 0) return;
  const int dev = out.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  const cuda::ErrorFlag flag(out.device(), stream);
  launch(cuda::grid_for(total, cuda::kThreads, dev), stream, flag.slot());
  GNDET_CUDA_LAUNCH_CHECK();
  int64_t index = 0, where = 0;
  // Same message as the CPU kernels (ops/cpu/index.cpp).
  GNDET_CHECK(!flag.raised(&index, &where), op, ": index ", index, " is out of range for a dimension of size ", src_dim);
}

void gather_cuda(const Tensor& out, const Tensor& src, const Tensor& idx, IndexGeometry g) {
  cuda::require_device("gather", out.device(), {&src, &idx});
  dispatch_value_and_index(src, idx, "gather", [&]<class T, class I>() {
    run_indexed("gather", out, out.numel(), g.src_dim, [&](unsigned grid, cudaStream_t s, cuda::ErrorSlot bad) {
      gather_cu<T, I><<<grid, cuda::kThreads, 0, s>>>(static_cast<T*>(out.raw_data()), static_cast<const T*>(src.raw_data()),
                                                      static_cast<const I*>(idx.raw_data()), g, out.numel(), bad);
    });
  });
}

void index_select_cuda(const Tensor& out, const Tensor& src, const Tensor& idx, IndexGeometry g) {
  cuda::require_device("index_select", out.device(), {&src, &idx});
  dispatch_value_and_index(src, idx, "index_select", [&]<class T, class I>() {
    run_indexed("index_select", out, out.numel(), g.src_dim, [&](unsigned grid, cudaStream_t s, cuda::ErrorSlot bad) {
      index_select_cu<T, I><<<grid, cuda::kThreads, 0, s>>>(static_cast<T*>(out.raw_data()),
                                                            static_cast<const T*>(src.raw_data()),
                                                            static_cast<const I*>(idx.raw_data()), g, out.numel(), bad);
    });
  });
}

void scatter_add_cuda(const Tensor& out, const Tensor& idx, const Tensor& src, IndexGeometry g) {
  cuda::require_device("scatter_add", out.device(), {&src, &idx});
  dispatch_number_and_index(src, idx, "scatter_add", [&]<class T, class I>() {
    run_indexed("scatter_add", out, src.numel(), g.src_dim, [&](unsigned grid, cudaStream_t s, cuda::ErrorSlot bad) {
      scatter_add_cu<T, I><<<grid, cuda::kThreads, 0, s>>>(static_cast<T*>(out.raw_data()),
                                                           static_cast<const I*>(idx.raw_data()),
                                                           static_cast<const T*>(src.raw_data()), g, src.numel(), bad);
    });
  });
}

void index_add_cuda(const Tensor& out, const Tensor& idx, const Tensor& src, IndexGeometry g) {
  cuda::require_device("index_add", out.device(), {&src, &idx});
  dispatch_number_and_index(src, idx, "index_add", [&]<class T, class I>() {
    run_indexed("index_add", out, src.numel(), g.src_dim, [&](unsigned grid, cudaStream_t s, cuda::ErrorSlot bad) {
      index_add_cu<T, I><<<grid, cuda::kThreads, 0, s>>>(static_cast<T*>(out.raw_data()),
                                                         static_cast<const I*>(idx.raw_data()),
                                                         static_cast<const T*>(src.raw_data()), g, src.numel(), bad);
    });
  });
}

// ---- nonzero ----

constexpr int kMaxNonzeroDims = 16;
struct Dims {
  int64_t size[kMaxNonzeroDims];
  int n;
};

// out[row, :] = coordinates of linear index flat[row] in a tensor of shape dims.
__global__ void unravel_cu(const int64_t* flat, int64_t* out, int64_t rows, Dims dims) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; row < rows; row += stride) {
    int64_t rem = flat[row];
    for (int d = dims.n - 1; d >= 0; --d) {
      out[row * dims.n + d] = rem % dims.size[d];
      rem /= dims.size[d];
    }
  }
}

Tensor nonzero_cuda(const Tensor& mask) {
  GNDET_CHECK(mask.dtype() == kBool && mask.is_contiguous(), "nonzero: CUDA kernel expects a contiguous bool mask");
  const int64_t n = mask.numel(), nd = mask.dim();
  GNDET_CHECK(nd <= kMaxNonzeroDims, "nonzero: at most ", kMaxNonzeroDims, " dimensions on CUDA, got shape ",
              shape_str(mask.shape()));
  const TensorOptions int64_on(kInt64, mask.device());
  if (n == 0) return empty({0, nd}, int64_on);
  const int dev = mask.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);

  const Tensor flat = empty({n}, int64_on);
  const Tensor count = empty({1}, int64_on);
  const thrust::counting_iterator<int64_t> positions(0);
  const bool* flags = static_cast<const bool*>(mask.raw_data());
  int64_t* selected = static_cast<int64_t*>(flat.raw_data());
  int64_t* num = static_cast<int64_t*>(count.raw_data());
  size_t temp_bytes = 0;
  GNDET_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, temp_bytes, positions, flags, selected, num, n, stream));
  const Tensor temp = empty({static_cast<int64_t>(std::max<size_t>(temp_bytes, 1))}, TensorOptions(kUInt8, mask.device()));
  GNDET_CUDA_CHECK(cub::DeviceSelect::Flagged(temp.raw_data(), temp_bytes, positions, flags, selected, num, n, stream));

  int64_t k = 0;  // the output's size depends on it: a synchronising read is unavoidable
  GNDET_CUDA_CHECK(cudaMemcpyAsync(&k, num, sizeof(k), cudaMemcpyDeviceToHost, stream));
  GNDET_CUDA_CHECK(cudaStreamSynchronize(stream));

  Tensor out = empty({k, nd}, int64_on);
  if (k == 0 || nd == 0) return out;
  Dims dims{};
  dims.n = static_cast<int>(nd);
  for (int64_t d = 0; d < nd; ++d) dims.size[d] = mask.shape()[d];
  unravel_cu<<<cuda::grid_for(k, cuda::kThreads, dev), cuda::kThreads, 0, stream>>>(selected, static_cast<int64_t*>(out.raw_data()), k, dims);
  GNDET_CUDA_LAUNCH_CHECK();
  return out;
}

}  // namespace

GNDET_REGISTER_KERNEL(gather_kernel, CUDA, gather_cuda);
GNDET_REGISTER_KERNEL(scatter_add_kernel, CUDA, scatter_add_cuda);
GNDET_REGISTER_KERNEL(index_select_kernel, CUDA, index_select_cuda);
GNDET_REGISTER_KERNEL(index_add_kernel, CUDA, index_add_cuda);
GNDET_REGISTER_KERNEL(nonzero_kernel, CUDA, nonzero_cuda);

}  // namespace gndet
