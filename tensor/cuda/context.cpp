// CUDA context: errors, device guard, streams, device properties, library handles, TF32 switch.
#include "tensor/cuda/context.h"

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstring>

#include "tensor/error.h"

namespace gndet::cuda {

// ---- errors ----

void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  // Clears the error unless it is sticky (a kernel fault), so that the next check does not
  // report this one again.
  (void)cudaGetLastError();
  GNDET_FAIL("CUDA error ", cudaGetErrorName(err), " (", cudaGetErrorString(err), ") in ", expr, " at ", file, ":",
             line);
}

void throw_cublas_error(cublasStatus_t status, const char* expr, const char* file, int line) {
  GNDET_FAIL("cuBLAS error ", cublasGetStatusName(status), " (", cublasGetStatusString(status), ") in ", expr, " at ",
             file, ":", line);
}

#if GNDET_WITH_CUDNN
void throw_cudnn_error(cudnnStatus_t status, const char* expr, const char* file, int line) {
  GNDET_FAIL("cuDNN error ", cudnnGetErrorString(status), " in ", expr, " at ", file, ":", line);
}
#endif

// ---- device guard ----

DeviceGuard::DeviceGuard(int device) {
  int cur = 0;
  GNDET_CUDA_CHECK(cudaGetDevice(&cur));
  if (cur != device) {
    GNDET_CUDA_CHECK(cudaSetDevice(device));
    prev_ = cur;
  }
}

DeviceGuard::~DeviceGuard() {
  if (prev_ >= 0) (void)cudaSetDevice(prev_);  // a destructor must not throw; the switch back cannot fail
}

// ---- streams ----

namespace {

void check_device_index(int device, const char* what) {
  GNDET_CHECK(device >= 0 && device < kMaxDevices, what, ": CUDA device index ", device, " out of range");
}

std::array<cudaStream_t, kMaxDevices>& thread_streams() {
  thread_local std::array<cudaStream_t, kMaxDevices> streams{};  // all nullptr: the legacy default stream
  return streams;
}

constexpr int kPoolStreams = 4;
struct StreamPool {
  std::once_flag once;
  cudaStream_t streams[kPoolStreams] = {};
  std::atomic<unsigned> next{0};
};
StreamPool g_pools[kMaxDevices];

}  // namespace

cudaStream_t stream_for(int device) {
  check_device_index(device, "current stream");
  return thread_streams()[device];
}

void set_stream_for(int device, cudaStream_t stream) {
  check_device_index(device, "set current stream");
  thread_streams()[device] = stream;
}

Stream current_stream(int device) { return Stream{device, stream_for(device)}; }

Stream stream_from_pool(int device) {
  check_device_index(device, "stream_from_pool");
  StreamPool& pool = g_pools[device];
  std::call_once(pool.once, [&] {
    DeviceGuard guard(device);
    for (auto& s : pool.streams) GNDET_CUDA_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  });
  return Stream{device, pool.streams[pool.next.fetch_add(1) % kPoolStreams]};
}

void synchronize_stream(Stream stream) {
  DeviceGuard guard(stream.device);
  GNDET_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(stream.handle)));
}

void wait_stream(Stream waiter, Stream producer) {
  if (waiter == producer) return;
  DeviceGuard guard(producer.device);
  cudaEvent_t ev = nullptr;
  GNDET_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
  // The event is destroyed right away: CUDA keeps its resources until the wait has been resolved.
  const cudaError_t rec = cudaEventRecord(ev, static_cast<cudaStream_t>(producer.handle));
  const cudaError_t wait =
      rec == cudaSuccess ? cudaStreamWaitEvent(static_cast<cudaStream_t>(waiter.handle), ev, 0) : rec;
  (void)cudaEventDestroy(ev);
  GNDET_CUDA_CHECK(wait);
}

StreamGuard::StreamGuard(Stream stream) : prev_(current_stream(stream.device)) {
  set_stream_for(stream.device, static_cast<cudaStream_t>(stream.handle));
}
StreamGuard::~StreamGuard() { thread_streams()[prev_.device] = static_cast<cudaStream_t>(prev_.handle); }

// ---- device properties ----

const cudaDeviceProp& device_properties(int device) {
  check_device_index(device, "device_properties");
  static std::once_flag once[kMaxDevices];
  static cudaDeviceProp props[kMaxDevices];
  std::call_once(once[device], [&] { GNDET_CUDA_CHECK(cudaGetDeviceProperties(&props[device], device)); });
  return props[device];
}

unsigned grid_for(int64_t n, int64_t per_block, int device, int waves) {
  const int64_t needed = ceil_div(n, per_block);
  const int64_t resident = static_cast<int64_t>(num_sms(device)) * waves;
  const int64_t blocks = std::max<int64_t>(1, std::min(needed, resident));
  return static_cast<unsigned>(std::min<int64_t>(blocks, 0x7fffffff));
}

// ---- library handles ----

namespace {
struct CublasSlot {
  std::mutex mu;
  cublasHandle_t handle = nullptr;
};
CublasSlot g_cublas[kMaxDevices];
}  // namespace

CublasLease::CublasLease(int device) {
  check_device_index(device, "cuBLAS handle");
  CublasSlot& slot = g_cublas[device];
  lock_ = std::unique_lock<std::mutex>(slot.mu);
  if (slot.handle == nullptr) {
    DeviceGuard guard(device);
    GNDET_CUBLAS_CHECK(cublasCreate(&slot.handle));
  }
  handle_ = slot.handle;
  GNDET_CUBLAS_CHECK(cublasSetStream(handle_, stream_for(device)));
}

#if GNDET_WITH_CUDNN
namespace {
struct CudnnSlot {
  std::mutex mu;
  cudnnHandle_t handle = nullptr;
};
CudnnSlot g_cudnn[kMaxDevices];
}  // namespace

CudnnLease::CudnnLease(int device) {
  check_device_index(device, "cuDNN handle");
  CudnnSlot& slot = g_cudnn[device];
  lock_ = std::unique_lock<std::mutex>(slot.mu);
  if (slot.handle == nullptr) {
    DeviceGuard guard(device);
    GNDET_CUDNN_CHECK(cudnnCreate(&slot.handle));
  }
  handle_ = slot.handle;
  GNDET_CUDNN_CHECK(cudnnSetStream(handle_, stream_for(device)));
}
#endif

// ---- TF32 ----

namespace {
bool tf32_from_env() {
  const char* v = std::getenv("GNDET_ALLOW_TF32");
  if (v == nullptr) return true;
  return !(std::strcmp(v, "0") == 0 || std::strcmp(v, "false") == 0 || std::strcmp(v, "off") == 0);
}
std::atomic<bool> g_allow_tf32{tf32_from_env()};
}  // namespace

void set_allow_tf32(bool allow) { g_allow_tf32.store(allow); }
bool allow_tf32() { return g_allow_tf32.load(); }

}  // namespace gndet::cuda
