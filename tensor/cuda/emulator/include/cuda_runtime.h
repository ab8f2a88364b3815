// The CUDA runtime as the emulated device provides it: the types, constants and functions of
// cuda_runtime.h that gndet uses, and, for the kernel sources, what nvcc supplies itself (the
// qualifiers, threadIdx & co., __syncthreads, warp collectives, atomics, intrinsics).
//
// gndet's .cu files are compiled against this header by the host compiler (after cu_rewrite has
// turned their launches into emu::launch calls); its host files (tensor/cuda/*.cpp, ...) include
// it as they would include the real one. Behaviour follows the CUDA runtime's documentation:
// device memory apart from host memory, asynchronous streams, sticky errors after a kernel fault.
// What is emulated and what is checked: docs/emulator.md.
#pragma once

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>

#define GNDET_CUDA_EMULATOR 1
#define CUDART_VERSION 12080

// ---- qualifiers ----
#define __host__
#define __device__
#define __global__
#define __constant__
#define __forceinline__ inline __attribute__((always_inline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
// The threads of a block run on one host thread (as fibers), and one block at a time runs on it:
// a thread_local is exactly one copy per running block. Dynamic shared memory is rewritten by
// cu_rewrite into emu::dynamic_shared().
#define __shared__ static thread_local

inline constexpr int warpSize = 32;

// ---- vector types ----
struct uint3 {
  unsigned x, y, z;
};
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  constexpr dim3(unsigned vx = 1, unsigned vy = 1, unsigned vz = 1) : x(vx), y(vy), z(vz) {}
  constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
  constexpr operator uint3() const { return {x, y, z}; }
};

// ---- errors ----
enum cudaError {
  cudaSuccess = 0,
  cudaErrorInvalidValue = 1,
  cudaErrorMemoryAllocation = 2,
  cudaErrorInitializationError = 3,
  cudaErrorInvalidConfiguration = 9,
  cudaErrorInvalidMemcpyDirection = 21,
  cudaErrorInsufficientDriver = 35,
  cudaErrorNoDevice = 100,
  cudaErrorInvalidDevice = 101,
  cudaErrorInvalidResourceHandle = 400,
  cudaErrorNotReady = 600,
  cudaErrorIllegalAddress = 700,
  cudaErrorLaunchOutOfResources = 701,
  cudaErrorLaunchTimeout = 702,
  cudaErrorPeerAccessNotEnabled = 705,
  cudaErrorLaunchFailure = 719,
  cudaErrorNotSupported = 801,
  cudaErrorUnknown = 999,
};
typedef enum cudaError cudaError_t;

// ---- handles and flags ----
typedef struct CUstream_st* cudaStream_t;
typedef struct CUevent_st* cudaEvent_t;

#define cudaStreamDefault 0x00
#define cudaStreamNonBlocking 0x01
#define cudaStreamLegacy ((cudaStream_t)0x1)
#define cudaStreamPerThread ((cudaStream_t)0x2)
#define cudaEventDefault 0x00
#define cudaEventBlockingSync 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocDefault 0x00
#define cudaHostAllocPortable 0x01
#define cudaHostAllocMapped 0x02
#define cudaHostAllocWriteCombined 0x04

enum cudaMemcpyKind {
  cudaMemcpyHostToHost = 0,
  cudaMemcpyHostToDevice = 1,
  cudaMemcpyDeviceToHost = 2,
  cudaMemcpyDeviceToDevice = 3,
  cudaMemcpyDefault = 4,
};

enum cudaMemoryType {
  cudaMemoryTypeUnregistered = 0,
  cudaMemoryTypeHost = 1,
  cudaMemoryTypeDevice = 2,
  cudaMemoryTypeManaged = 3,
};

struct cudaPointerAttributes {
  enum cudaMemoryType type;
  int device;
  void* devicePointer;
  void* hostPointer;
};

// The fields gndet reads, with the real struct's names.
struct cudaDeviceProp {
  char name[256];
  size_t totalGlobalMem;
  size_t sharedMemPerBlock;
  int regsPerBlock;
  int warpSize;
  int maxThreadsPerBlock;
  int maxThreadsDim[3];
  int maxGridSize[3];
  size_t totalConstMem;
  int major;
  int minor;
  int multiProcessorCount;
  int maxThreadsPerMultiProcessor;
  int maxBlocksPerMultiProcessor;
  size_t sharedMemPerMultiprocessor;
  size_t sharedMemPerBlockOptin;
  int l2CacheSize;
  int unifiedAddressing;
};

// ---- the runtime API (tensor/cuda/emulator/runtime.cpp) ----
extern "C" {
cudaError_t cudaGetDeviceCount(int* count);
cudaError_t cudaGetDevice(int* device);
cudaError_t cudaSetDevice(int device);
cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device);
cudaError_t cudaDeviceSynchronize(void);
cudaError_t cudaDeviceReset(void);
cudaError_t cudaRuntimeGetVersion(int* version);
cudaError_t cudaDriverGetVersion(int* version);

cudaError_t cudaGetLastError(void);
cudaError_t cudaPeekAtLastError(void);
const char* cudaGetErrorName(cudaError_t error);
const char* cudaGetErrorString(cudaError_t error);

cudaError_t cudaMalloc(void** ptr, size_t size);
cudaError_t cudaFree(void* ptr);
cudaError_t cudaMemGetInfo(size_t* free, size_t* total);
cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int flags);
cudaError_t cudaMallocHost(void** ptr, size_t size);
cudaError_t cudaFreeHost(void* ptr);
cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* attributes, const void* ptr);

cudaError_t cudaMemcpy(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind);
cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t count, enum cudaMemcpyKind kind, cudaStream_t stream);
cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device, size_t count,
                                cudaStream_t stream);
cudaError_t cudaMemset(void* ptr, int value, size_t count);
cudaError_t cudaMemsetAsync(void* ptr, int value, size_t count, cudaStream_t stream);

cudaError_t cudaStreamCreate(cudaStream_t* stream);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags);
cudaError_t cudaStreamDestroy(cudaStream_t stream);
cudaError_t cudaStreamSynchronize(cudaStream_t stream);
cudaError_t cudaStreamQuery(cudaStream_t stream);
cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags);

cudaError_t cudaEventCreate(cudaEvent_t* event);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags);
cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream);
cudaError_t cudaEventQuery(cudaEvent_t event);
cudaError_t cudaEventSynchronize(cudaEvent_t event);
cudaError_t cudaEventDestroy(cudaEvent_t event);
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end);
}

// ---- the emulator's own interface, for the templates below and for the rewritten launches ----
namespace gndet::cuda::emu {

struct LaunchSite {
  const char* kernel;  // the launch's kernel expression, as written
  const char* file;
  int line;
};
struct LaunchConfig {
  dim3 grid, block;
  size_t shared_bytes;
  cudaStream_t stream;
  LaunchConfig(dim3 g, dim3 b, size_t smem = 0, cudaStream_t s = nullptr)
      : grid(g), block(b), shared_bytes(smem), stream(s) {}
};

// Checks the configuration (an invalid one sets the last error, as CUDA does, and names the
// kernel), then queues the grid on the stream. `thread_main` runs once per emulated thread.
void submit_launch(const LaunchSite& site, const LaunchConfig& config, std::function<void()> thread_main);
// The kernel's own code runs between these two: its memory accesses are checked.
void enter_kernel_code();
void leave_kernel_code();

// kernel<<<config>>>(args...) after cu_rewrite. The arguments are evaluated here, once; each
// emulated thread copies them onto its own stack, as a GPU thread gets its own parameters.
template <class Call, class... Args>
void launch(const LaunchSite& site, const LaunchConfig& config, Call call, Args... args) {
  auto packed = std::make_shared<const std::tuple<Call, Args...>>(std::move(call), std::move(args)...);
  submit_launch(site, config, [packed]() {
    std::tuple<Call, Args...> params(*packed);
    enter_kernel_code();
    std::apply([](Call& c, Args&... a) { c(a...); }, params);
    leave_kernel_code();
  });
}

// Resident blocks per multiprocessor for blocks of `threads` threads and `shared_bytes` of
// dynamic shared memory: what the emulated device can really run at once (every resident block
// has a host thread), so grids sized by it never wait on a block that cannot start.
int max_active_blocks_per_sm(int threads, size_t shared_bytes);

// ---- device-side builtins (tensor/cuda/emulator/launch.cpp) ----
uint3 thread_idx();
uint3 block_idx();
dim3 block_dim();
dim3 grid_dim();
void* dynamic_shared();
void syncthreads(const char* file, int line);
void syncwarp(unsigned mask, const char* file, int line);
enum class WarpOp { Shfl, ShflXor, ShflDown, ShflUp, All, Any, Ballot };
// One warp collective: every lane of `mask` contributes `bits` and gets the lane's result.
uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, const char* file, int line);
void threadfence();
void nanosleep(unsigned ns);

// Atomics on device or shared memory, checked like every other access.
template <class T>
T atomic_add(T* p, T v);
template <class T>
T atomic_sub(T* p, T v);
template <class T>
T atomic_exch(T* p, T v);
template <class T>
T atomic_min(T* p, T v);
template <class T>
T atomic_max(T* p, T v);
template <class T>
T atomic_and(T* p, T v);
template <class T>
T atomic_or(T* p, T v);
template <class T>
T atomic_xor(T* p, T v);
template <class T>
T atomic_cas(T* p, T compare, T v);

// nvcc's shuffle overloads: these types and no others.
template <class T>
inline constexpr bool kShuffleType =
    std::is_same_v<T, int> || std::is_same_v<T, unsigned> || std::is_same_v<T, long> ||
    std::is_same_v<T, unsigned long> || std::is_same_v<T, long long> || std::is_same_v<T, unsigned long long> ||
    std::is_same_v<T, float> || std::is_same_v<T, double>;

template <class T>
T shuffle(WarpOp op, const char* file, int line, unsigned mask, T v, int arg, int width) {
  static_assert(kShuffleType<T>, "__shfl*_sync has no overload for this type (nvcc accepts int, unsigned, long, "
                                 "long long, their unsigned forms, float and double)");
  uint64_t bits = 0;
  std::memcpy(&bits, &v, sizeof(T));
  bits = warp_collective(op, mask, bits, arg, width, file, line);
  T out;
  std::memcpy(&out, &bits, sizeof(T));
  return out;
}

}  // namespace gndet::cuda::emu

#define threadIdx (::gndet::cuda::emu::thread_idx())
#define blockIdx (::gndet::cuda::emu::block_idx())
#define blockDim (::gndet::cuda::emu::block_dim())
#define gridDim (::gndet::cuda::emu::grid_dim())

#define __syncthreads() ::gndet::cuda::emu::syncthreads(__FILE__, __LINE__)
#define __syncwarp(...) ::gndet::cuda::emu::syncwarp(::gndet::cuda::emu::detail_mask(__VA_ARGS__), __FILE__, __LINE__)
#define __shfl_sync(mask, v, src, ...) \
  ::gndet::cuda::emu::shuffle(::gndet::cuda::emu::WarpOp::Shfl, __FILE__, __LINE__, mask, v, src, ::gndet::cuda::emu::detail_width(__VA_ARGS__))
#define __shfl_xor_sync(mask, v, lane_mask, ...) \
  ::gndet::cuda::emu::shuffle(::gndet::cuda::emu::WarpOp::ShflXor, __FILE__, __LINE__, mask, v, lane_mask, ::gndet::cuda::emu::detail_width(__VA_ARGS__))
#define __shfl_down_sync(mask, v, delta, ...) \
  ::gndet::cuda::emu::shuffle(::gndet::cuda::emu::WarpOp::ShflDown, __FILE__, __LINE__, mask, v, static_cast<int>(delta), ::gndet::cuda::emu::detail_width(__VA_ARGS__))
#define __shfl_up_sync(mask, v, delta, ...) \
  ::gndet::cuda::emu::shuffle(::gndet::cuda::emu::WarpOp::ShflUp, __FILE__, __LINE__, mask, v, static_cast<int>(delta), ::gndet::cuda::emu::detail_width(__VA_ARGS__))
#define __all_sync(mask, pred) \
  static_cast<int>(::gndet::cuda::emu::warp_collective(::gndet::cuda::emu::WarpOp::All, mask, (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __any_sync(mask, pred) \
  static_cast<int>(::gndet::cuda::emu::warp_collective(::gndet::cuda::emu::WarpOp::Any, mask, (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))
#define __ballot_sync(mask, pred) \
  static_cast<unsigned>(::gndet::cuda::emu::warp_collective(::gndet::cuda::emu::WarpOp::Ballot, mask, (pred) ? 1 : 0, 0, 32, __FILE__, __LINE__))

namespace gndet::cuda::emu {
constexpr unsigned detail_mask(unsigned mask = 0xffffffffu) { return mask; }
constexpr int detail_width(int width = 32) { return width; }
}  // namespace gndet::cuda::emu

// ---- atomics: nvcc's overloads, each checked like any other access (launch.cpp) ----
#define GNDET_EMU_ATOMIC(cuda_name, impl, T) \
  inline T cuda_name(T* p, T v) { return ::gndet::cuda::emu::impl(p, v); }
GNDET_EMU_ATOMIC(atomicAdd, atomic_add, float)
GNDET_EMU_ATOMIC(atomicAdd, atomic_add, double)
GNDET_EMU_ATOMIC(atomicAdd, atomic_add, int)
GNDET_EMU_ATOMIC(atomicAdd, atomic_add, unsigned)
GNDET_EMU_ATOMIC(atomicAdd, atomic_add, unsigned long long)
GNDET_EMU_ATOMIC(atomicSub, atomic_sub, int)
GNDET_EMU_ATOMIC(atomicSub, atomic_sub, unsigned)
GNDET_EMU_ATOMIC(atomicExch, atomic_exch, int)
GNDET_EMU_ATOMIC(atomicExch, atomic_exch, unsigned)
GNDET_EMU_ATOMIC(atomicExch, atomic_exch, unsigned long long)
GNDET_EMU_ATOMIC(atomicExch, atomic_exch, float)
GNDET_EMU_ATOMIC(atomicMin, atomic_min, int)
GNDET_EMU_ATOMIC(atomicMin, atomic_min, unsigned)
GNDET_EMU_ATOMIC(atomicMin, atomic_min, long long)
GNDET_EMU_ATOMIC(atomicMin, atomic_min, unsigned long long)
GNDET_EMU_ATOMIC(atomicMax, atomic_max, int)
GNDET_EMU_ATOMIC(atomicMax, atomic_max, unsigned)
GNDET_EMU_ATOMIC(atomicMax, atomic_max, long long)
GNDET_EMU_ATOMIC(atomicMax, atomic_max, unsigned long long)
GNDET_EMU_ATOMIC(atomicAnd, atomic_and, int)
GNDET_EMU_ATOMIC(atomicAnd, atomic_and, unsigned)
GNDET_EMU_ATOMIC(atomicAnd, atomic_and, unsigned long long)
GNDET_EMU_ATOMIC(atomicOr, atomic_or, int)
GNDET_EMU_ATOMIC(atomicOr, atomic_or, unsigned)
GNDET_EMU_ATOMIC(atomicOr, atomic_or, unsigned long long)
GNDET_EMU_ATOMIC(atomicXor, atomic_xor, int)
GNDET_EMU_ATOMIC(atomicXor, atomic_xor, unsigned)
GNDET_EMU_ATOMIC(atomicXor, atomic_xor, unsigned long long)
#undef GNDET_EMU_ATOMIC
inline int atomicCAS(int* p, int compare, int v) { return ::gndet::cuda::emu::atomic_cas(p, compare, v); }
inline unsigned atomicCAS(unsigned* p, unsigned compare, unsigned v) {
  return ::gndet::cuda::emu::atomic_cas(p, compare, v);
}
inline unsigned long long atomicCAS(unsigned long long* p, unsigned long long compare, unsigned long long v) {
  return ::gndet::cuda::emu::atomic_cas(p, compare, v);
}

// ---- intrinsics: IEEE round-to-nearest operations are plain operations here (the emulated
// kernels are compiled with -ffp-contract=off, so nothing is fused), bit casts, cached loads ----
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dsub_rn(double a, double b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }
inline double rsqrt(double x) { return 1.0 / std::sqrt(x); }
inline unsigned __float_as_uint(float x) { return std::bit_cast<unsigned>(x); }
inline int __float_as_int(float x) { return std::bit_cast<int>(x); }
inline float __uint_as_float(unsigned x) { return std::bit_cast<float>(x); }
inline float __int_as_float(int x) { return std::bit_cast<float>(x); }
inline long long __double_as_longlong(double x) { return std::bit_cast<long long>(x); }
inline double __longlong_as_double(long long x) { return std::bit_cast<double>(x); }
inline int __popc(unsigned x) { return std::popcount(x); }
inline int __popcll(unsigned long long x) { return std::popcount(x); }
inline int __clz(int x) { return std::countl_zero(static_cast<unsigned>(x)); }
inline int __ffs(int x) { return x == 0 ? 0 : std::countr_zero(static_cast<unsigned>(x)) + 1; }
template <class T>
inline T __ldcg(const T* p) {
  return *p;
}
template <class T>
inline T __ldg(const T* p) {
  return *p;
}
inline void __threadfence() { ::gndet::cuda::emu::threadfence(); }
inline void __threadfence_block() { ::gndet::cuda::emu::threadfence(); }
inline void __nanosleep(unsigned ns) { ::gndet::cuda::emu::nanosleep(ns); }

// ---- templates of the runtime API ----
template <class T>
inline cudaError_t cudaMalloc(T** ptr, size_t size) {
  return ::cudaMalloc(reinterpret_cast<void**>(ptr), size);
}
template <class Kernel>
inline cudaError_t cudaOccupancyMaxActiveBlocksPerMultiprocessor(int* blocks, Kernel, int block_size,
                                                                 size_t dynamic_shared_bytes) {
  if (blocks == nullptr || block_size <= 0) return cudaErrorInvalidValue;
  *blocks = ::gndet::cuda::emu::max_active_blocks_per_sm(block_size, dynamic_shared_bytes);
  return cudaSuccess;
}
