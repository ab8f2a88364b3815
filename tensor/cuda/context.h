// The CUDA context, for code compiled with CUDA only (.cu files and gndet_cuda_host_sources):
// error checks, the device guard, the current stream of each device and thread, device
// properties, and the per-device cuBLAS / cuDNN handles. Code that must also build without CUDA
// uses tensor/cuda_api.h instead.
//
// Every CUDA runtime or library call goes through a check macro that turns a failure into a
// gndet::Error naming the call, the file and the line; every kernel launch is followed by
// GNDET_CUDA_LAUNCH_CHECK() (launch errors are only visible through cudaGetLastError).
//
// Streams: the current stream of every device starts as the legacy default stream (handle 0),
// as in PyTorch. It synchronises with every other blocking stream, so ops, copies and library
// calls are ordered without events; a thread that wants overlap (a data loader's copies) switches
// to a pool stream with cuda::StreamGuard and orders its work with wait_stream / record_stream.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <mutex>

#include "gndet_config.h"
#include "tensor/cuda_api.h"

#if GNDET_WITH_CUDNN
#include <cudnn.h>
#endif

namespace gndet::cuda {

inline constexpr int kMaxDevices = 64;

[[noreturn]] void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line);
#if GNDET_WITH_CUDNN
[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* expr, const char* file, int line);
#endif

inline void check_cuda(cudaError_t err, const char* expr, const char* file, int line) {
  if (err != cudaSuccess) [[unlikely]] throw_cuda_error(err, expr, file, line);
}

}  // namespace gndet::cuda

#define GNDET_CUDA_CHECK(expr) ::gndet::cuda::check_cuda((expr), #expr, __FILE__, __LINE__)
#define GNDET_CUDA_LAUNCH_CHECK() ::gndet::cuda::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
#define GNDET_CUBLAS_CHECK(expr)                                                               \
  do {                                                                                         \
    const cublasStatus_t gndet_status_ = (expr);                                               \
    if (gndet_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                                   \
      ::gndet::cuda::throw_cublas_error(gndet_status_, #expr, __FILE__, __LINE__);             \
  } while (0)
#if GNDET_WITH_CUDNN
#define GNDET_CUDNN_CHECK(expr)                                                                \
  do {                                                                                         \
    const cudnnStatus_t gndet_status_ = (expr);                                                \
    if (gndet_status_ != CUDNN_STATUS_SUCCESS) [[unlikely]]                                    \
      ::gndet::cuda::throw_cudnn_error(gndet_status_, #expr, __FILE__, __LINE__);              \
  } while (0)
#endif

namespace gndet::cuda {

// Makes `device` current for its scope and restores the previous one (only when they differ, so
// the common single-GPU case costs one cudaGetDevice).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int prev_ = -1;
};

// The current stream of `device` in this thread (see the header comment).
cudaStream_t stream_for(int device);
void set_stream_for(int device, cudaStream_t stream);

// Cached cudaGetDeviceProperties.
const cudaDeviceProp& device_properties(int device);
inline int num_sms(int device) { return device_properties(device).multiProcessorCount; }

// The device's cuBLAS handle (created on first use, never destroyed: the process exit tears the
// context down), locked for the holder and bound to the device's current stream.
class CublasLease {
 public:
  explicit CublasLease(int device);
  cublasHandle_t get() const { return handle_; }

 private:
  std::unique_lock<std::mutex> lock_;
  cublasHandle_t handle_ = nullptr;
};

#if GNDET_WITH_CUDNN
// The same for cuDNN.
class CudnnLease {
 public:
  explicit CudnnLease(int device);
  cudnnHandle_t get() const { return handle_; }

 private:
  std::unique_lock<std::mutex> lock_;
  cudnnHandle_t handle_ = nullptr;
};
#endif

// Blocks for a grid-stride loop over n items, `per_block` items per block per step: enough to
// fill the device (`waves` resident blocks per SM), never 0 (callers return early on n == 0).
unsigned grid_for(int64_t n, int64_t per_block, int device, int waves = 8);

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace gndet::cuda
