// The CUDA runtime calls of the emulated device that are not about streams or kernels: the
// device and its properties, errors, memory, copies and memsets. Copies follow the runtime's
// rules on when they return: pageable host memory is staged at the call (host -> device) or
// waited for (device -> host); pinned memory is read or written when the stream gets there.
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "tensor/cuda/emulator/internal.h"

namespace gndet::cuda::emu {
namespace {

long env_long(const char* name, long fallback, long lo, long hi) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi) {
    std::fprintf(stderr, "gndet emulated CUDA device: %s=%s is not an integer in [%ld, %ld]; using %ld\n", name, v, lo,
                 hi, fallback);
    return fallback;
  }
  return x;
}

bool env_flag(const char* name, bool fallback) { return env_long(name, fallback ? 1 : 0, 0, 1) != 0; }

Settings read_settings() {
  Settings s;
  s.devices = static_cast<int>(env_long("GNDET_EMU_DEVICES", s.devices, 0, 1));
  s.sms = static_cast<int>(env_long("GNDET_EMU_SMS", s.sms, 1, 64));
  s.resident_per_sm = static_cast<int>(env_long("GNDET_EMU_RESIDENT", s.resident_per_sm, 1, 32));
  const long cores = std::max(1u, std::thread::hardware_concurrency());
  s.running = static_cast<int>(env_long("GNDET_EMU_THREADS", cores, 1, 1024));
  if (const char* v = std::getenv("GNDET_EMU_SCHEDULE"); v != nullptr && *v != '\0') {
    const std::string name = v;
    if (name == "greedy") {
      s.schedule = Schedule::WarpGreedy;
    } else if (name == "reverse") {
      s.schedule = Schedule::ReverseGreedy;
    } else if (name == "random") {
      s.schedule = Schedule::Random;
    } else {
      std::fprintf(stderr, "gndet emulated CUDA device: GNDET_EMU_SCHEDULE=%s: expected greedy, reverse or random; "
                           "using greedy\n", v);
    }
  }
  s.seed = static_cast<uint64_t>(env_long("GNDET_EMU_SEED", 1, 0, 1L << 62));
  s.memory_bytes = static_cast<size_t>(env_long("GNDET_EMU_MEMORY_GB", 16, 1, 1024)) << 30;
  s.memcheck = env_flag("GNDET_EMU_MEMCHECK", true);
  s.racecheck = env_flag("GNDET_EMU_RACECHECK", true);
  s.protect_keys = env_flag("GNDET_EMU_PKEYS", true);
  s.hang_seconds = static_cast<double>(env_long("GNDET_EMU_HANG_SECONDS", 120, 1, 86400));
  return s;
}

std::mutex g_sticky_mu;
std::atomic<int> g_sticky{cudaSuccess};
std::string g_sticky_report;

thread_local cudaError_t tl_detail_error = cudaSuccess;
thread_local std::string tl_detail;

std::string hex(const void* p) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%p", p);
  return buf;
}

DeviceMemory& memory() { return DeviceMemory::get(); }

// Where a pointer of a copy lives.
enum class Where { Device, Pinned, Pageable };
Where where(const void* p) {
  if (memory().contains(reinterpret_cast<uintptr_t>(p))) return Where::Device;
  return is_pinned(p) ? Where::Pinned : Where::Pageable;
}

const char* kind_name(cudaMemcpyKind k) {
  switch (k) {
    case cudaMemcpyHostToHost: return "cudaMemcpyHostToHost";
    case cudaMemcpyHostToDevice: return "cudaMemcpyHostToDevice";
    case cudaMemcpyDeviceToHost: return "cudaMemcpyDeviceToHost";
    case cudaMemcpyDeviceToDevice: return "cudaMemcpyDeviceToDevice";
    case cudaMemcpyDefault: return "cudaMemcpyDefault";
  }
  return "an unknown cudaMemcpyKind";
}

// A copy: checks its pointers against `kind` (the CUDA runtime leaves a mismatch undefined; here it
// is an error naming both sides), then queues it. `sync`: return only when it is done.
cudaError_t copy(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t stream, bool sync) {
  if (sticky_error() != cudaSuccess) return api_result(sticky_error());
  if (n == 0) return api_result(cudaSuccess);
  if (dst == nullptr || src == nullptr) return api_result(cudaErrorInvalidValue);
  const StreamPtr s = stream_for_handle(stream);
  if (s == nullptr) return api_result(cudaErrorInvalidResourceHandle);
  const Where d = where(dst), w = where(src);
  const bool dst_dev = d == Where::Device, src_dev = w == Where::Device;
  bool ok = true;
  switch (kind) {
    case cudaMemcpyHostToDevice: ok = dst_dev && !src_dev; break;
    case cudaMemcpyDeviceToHost: ok = !dst_dev && src_dev; break;
    case cudaMemcpyDeviceToDevice: ok = dst_dev && src_dev; break;
    case cudaMemcpyHostToHost: ok = !dst_dev && !src_dev; break;
    case cudaMemcpyDefault: break;
    default: ok = false;
  }
  if (!ok) {
    set_launch_detail(cudaErrorInvalidValue, std::string(kind_name(kind)) + " from " + (src_dev ? "device" : "host") +
                                                 " memory " + hex(src) + " to " + (dst_dev ? "device" : "host") +
                                                 " memory " + hex(dst));
    return api_result(cudaErrorInvalidValue);
  }
  const std::string what = std::string("cudaMemcpy ") + kind_name(kind);
  if (!dst_dev && !src_dev) {  // host to host: done at the call, in order with nothing
    wait_until_done(s, last_issued(s));
    std::memmove(dst, src, n);
    return api_result(cudaSuccess);
  }
  uint64_t seq;
  if (w == Where::Pageable) {
    // A pageable source is staged now: the caller may reuse it as soon as the call returns.
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src), static_cast<const char*>(src) + n);
    seq = enqueue(s, what, [dst, staged, n, what] {
      check_device_range(dst, n, (what + " destination").c_str());
      std::memcpy(dst, staged->data(), n);
    });
  } else {
    seq = enqueue(s, what, [dst, src, n, dst_dev, src_dev, what] {
      if (dst_dev) check_device_range(dst, n, (what + " destination").c_str());
      if (src_dev) check_device_range(src, n, (what + " source").c_str());
      std::memmove(dst, src, n);
    });
  }
  // To pageable memory the runtime returns once the copy is done; so does the synchronous API.
  if (sync || d == Where::Pageable) wait_until_done(s, seq);
  return api_result(cudaSuccess);
}

cudaError_t set(void* ptr, int value, size_t n, cudaStream_t stream, bool sync) {
  if (sticky_error() != cudaSuccess) return api_result(sticky_error());
  if (n == 0) return api_result(cudaSuccess);
  const StreamPtr s = stream_for_handle(stream);
  if (s == nullptr) return api_result(cudaErrorInvalidResourceHandle);
  if (!memory().contains(reinterpret_cast<uintptr_t>(ptr))) {
    set_launch_detail(cudaErrorInvalidValue, "cudaMemset of host memory " + hex(ptr));
    return api_result(cudaErrorInvalidValue);
  }
  const uint64_t seq = enqueue(s, "cudaMemset", [ptr, value, n] {
    check_device_range(ptr, n, "cudaMemset");
    std::memset(ptr, value, n);
  });
  if (sync) wait_until_done(s, seq);
  return api_result(cudaSuccess);
}

}  // namespace

const Settings& settings() {
  static const Settings s = read_settings();
  return s;
}

int workers() { return settings().sms * settings().resident_per_sm; }

cudaError_t sticky_error() { return static_cast<cudaError_t>(g_sticky.load(std::memory_order_acquire)); }

const std::string& sticky_report() { return g_sticky_report; }

void set_sticky(cudaError_t error, const std::string& report) {
  std::lock_guard<std::mutex> lock(g_sticky_mu);
  if (g_sticky.load() != cudaSuccess) return;  // the first fault is the one reported
  g_sticky_report = report;
  g_sticky.store(error, std::memory_order_release);
  std::fprintf(stderr, "\n==== gndet emulated CUDA device: %s (%s) ====\n%s\n", cudaGetErrorName(error),
               "the device is unusable from here on, as a GPU after a kernel fault", report.c_str());
}

void set_launch_detail(cudaError_t error, const std::string& detail) {
  tl_detail_error = error;
  tl_detail = detail;
}

std::string detail_for(cudaError_t error) {
  if (error != cudaSuccess && error == sticky_error()) {
    const std::string& r = sticky_report();
    return r.substr(0, r.find('\n'));
  }
  if (error != cudaSuccess && error == tl_detail_error) return tl_detail;
  return "";
}

std::string describe() {
  const Settings& s = settings();
  const char* sched = s.schedule == Schedule::WarpGreedy ? "warp-greedy"
                      : s.schedule == Schedule::ReverseGreedy ? "reverse warp-greedy" : "random";
  std::string d = "emulated CUDA device (CPU): " + std::to_string(s.sms) + " SMs x " + std::to_string(s.resident_per_sm) +
                  " resident blocks (" + std::to_string(workers()) + " worker threads, " + std::to_string(s.running) +
                  " computing at once), " + sched + " schedule";
  if (s.schedule == Schedule::Random) d += " (seed " + std::to_string(s.seed) + ")";
  d += "; memcheck ";
  d += access_hooks_built() && s.memcheck ? "on" : "off";
  d += ", racecheck ";
  d += access_hooks_built() && s.racecheck ? "on" : "off";
  d += ", synccheck on, host dereference of device memory ";
  d += memory().protection_key() >= 0 ? "caught (memory protection keys)" : "not caught (no memory protection keys)";
  if (!access_hooks_built()) d += "; kernels built without access hooks (AddressSanitizer build)";
  return d;
}

}  // namespace gndet::cuda::emu

using namespace gndet::cuda::emu;

extern "C" {

// ---- device ----

cudaError_t cudaGetDeviceCount(int* count) {
  if (count == nullptr) return api_result(cudaErrorInvalidValue);
  *count = settings().devices;
  return settings().devices == 0 ? api_result(cudaErrorNoDevice) : cudaSuccess;
}

namespace {
thread_local int tl_device = 0;
}

cudaError_t cudaGetDevice(int* device) {
  if (device == nullptr) return api_result(cudaErrorInvalidValue);
  *device = tl_device;
  return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
  if (device < 0 || device >= settings().devices) return api_result(cudaErrorInvalidDevice);
  tl_device = device;
  (void)memory();  // the device's memory and its protection are set up on first use
  return api_result(cudaSuccess);
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* p, int device) {
  if (p == nullptr) return api_result(cudaErrorInvalidValue);
  if (device < 0 || device >= settings().devices) return api_result(cudaErrorInvalidDevice);
  const Settings& s = settings();
  *p = cudaDeviceProp{};
  std::snprintf(p->name, sizeof(p->name), "emulated CUDA device (CPU)");
  p->totalGlobalMem = memory().size();
  p->sharedMemPerBlock = 48 << 10;
  p->regsPerBlock = 65536;
  p->warpSize = 32;
  p->maxThreadsPerBlock = 1024;
  p->maxThreadsDim[0] = 1024;
  p->maxThreadsDim[1] = 1024;
  p->maxThreadsDim[2] = 64;
  p->maxGridSize[0] = 0x7fffffff;
  p->maxGridSize[1] = 65535;
  p->maxGridSize[2] = 65535;
  p->totalConstMem = 64 << 10;
  p->major = 9;  // the feature set of the H100 the project targets (sm_90)
  p->minor = 0;
  p->multiProcessorCount = s.sms;
  p->maxThreadsPerMultiProcessor = 2048;
  p->maxBlocksPerMultiProcessor = 32;
  p->sharedMemPerMultiprocessor = 228 << 10;
  p->sharedMemPerBlockOptin = 227 << 10;
  p->l2CacheSize = 50 << 20;
  p->unifiedAddressing = 1;
  return api_result(cudaSuccess);
}

cudaError_t cudaDeviceSynchronize(void) {
  synchronize_all();
  return api_result(cudaSuccess);
}

cudaError_t cudaDeviceReset(void) {
  synchronize_all();
  return api_result(cudaSuccess);
}

cudaError_t cudaRuntimeGetVersion(int* version) {
  if (version == nullptr) return api_result(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int* version) {
  if (version == nullptr) return api_result(cudaErrorInvalidValue);
  *version = CUDART_VERSION;
  return cudaSuccess;
}

// ---- errors ----

cudaError_t cudaGetLastError(void) { return take_last_error(true); }
cudaError_t cudaPeekAtLastError(void) { return take_last_error(false); }

const char* cudaGetErrorName(cudaError_t e) {
  switch (e) {
    case cudaSuccess: return "cudaSuccess";
    case cudaErrorInvalidValue: return "cudaErrorInvalidValue";
    case cudaErrorMemoryAllocation: return "cudaErrorMemoryAllocation";
    case cudaErrorInitializationError: return "cudaErrorInitializationError";
    case cudaErrorInvalidConfiguration: return "cudaErrorInvalidConfiguration";
    case cudaErrorInvalidMemcpyDirection: return "cudaErrorInvalidMemcpyDirection";
    case cudaErrorInsufficientDriver: return "cudaErrorInsufficientDriver";
    case cudaErrorNoDevice: return "cudaErrorNoDevice";
    case cudaErrorInvalidDevice: return "cudaErrorInvalidDevice";
    case cudaErrorInvalidResourceHandle: return "cudaErrorInvalidResourceHandle";
    case cudaErrorNotReady: return "cudaErrorNotReady";
    case cudaErrorIllegalAddress: return "cudaErrorIllegalAddress";
    case cudaErrorLaunchOutOfResources: return "cudaErrorLaunchOutOfResources";
    case cudaErrorLaunchTimeout: return "cudaErrorLaunchTimeout";
    case cudaErrorPeerAccessNotEnabled: return "cudaErrorPeerAccessNotEnabled";
    case cudaErrorLaunchFailure: return "cudaErrorLaunchFailure";
    case cudaErrorNotSupported: return "cudaErrorNotSupported";
    case cudaErrorUnknown: return "cudaErrorUnknown";
  }
  return "cudaErrorUnknown";
}

const char* cudaGetErrorString(cudaError_t e) {
  const char* base = "unknown error";
  switch (e) {
    case cudaSuccess: base = "no error"; break;
    case cudaErrorInvalidValue: base = "invalid argument"; break;
    case cudaErrorMemoryAllocation: base = "out of memory"; break;
    case cudaErrorInitializationError: base = "initialization error"; break;
    case cudaErrorInvalidConfiguration: base = "invalid configuration argument"; break;
    case cudaErrorInvalidMemcpyDirection: base = "invalid copy direction for memcpy"; break;
    case cudaErrorInsufficientDriver: base = "CUDA driver version is insufficient for CUDA runtime version"; break;
    case cudaErrorNoDevice: base = "no CUDA-capable device is detected"; break;
    case cudaErrorInvalidDevice: base = "invalid device ordinal"; break;
    case cudaErrorInvalidResourceHandle: base = "invalid resource handle"; break;
    case cudaErrorNotReady: base = "device not ready"; break;
    case cudaErrorIllegalAddress: base = "an illegal memory access was encountered"; break;
    case cudaErrorLaunchOutOfResources: base = "too many resources requested for launch"; break;
    case cudaErrorLaunchTimeout: base = "the launch timed out and was terminated"; break;
    case cudaErrorPeerAccessNotEnabled: base = "peer access is not enabled"; break;
    case cudaErrorLaunchFailure: base = "unspecified launch failure"; break;
    case cudaErrorNotSupported: base = "operation not supported"; break;
    case cudaErrorUnknown: base = "unknown error"; break;
  }
  // The string must outlive the call: one per thread, rewritten by the next call.
  thread_local std::string text;
  const std::string detail = detail_for(e);
  text = detail.empty() ? std::string(base) : std::string(base) + "; emulated CUDA device: " + detail;
  return text.c_str();
}

// ---- memory ----

cudaError_t cudaMalloc(void** ptr, size_t size) {
  if (ptr == nullptr) return api_result(cudaErrorInvalidValue);
  if (sticky_error() != cudaSuccess) return api_result(sticky_error());
  *ptr = nullptr;
  if (size == 0) return api_result(cudaSuccess);
  if (size > memory().size()) return api_result(cudaErrorMemoryAllocation);
  void* p = memory().allocate(size);
  if (p == nullptr) return api_result(cudaErrorMemoryAllocation);
  *ptr = p;
  return api_result(cudaSuccess);
}

cudaError_t cudaFree(void* ptr) {
  if (ptr == nullptr) return api_result(cudaSuccess);
  // As on a GPU, freeing waits for the device: queued work may still use the memory.
  synchronize_all();
  if (!memory().release(ptr)) {
    set_launch_detail(cudaErrorInvalidValue, "cudaFree of " + hex(ptr) + ", which no cudaMalloc returned");
    return api_result(cudaErrorInvalidValue);
  }
  return api_result(cudaSuccess);
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total) {
  if (free_bytes == nullptr || total == nullptr) return api_result(cudaErrorInvalidValue);
  *total = memory().size();
  *free_bytes = *total - memory().used();
  return api_result(cudaSuccess);
}

cudaError_t cudaHostAlloc(void** ptr, size_t size, unsigned int) {
  if (ptr == nullptr) return api_result(cudaErrorInvalidValue);
  *ptr = pinned_allocate(size);
  return api_result(*ptr == nullptr ? cudaErrorMemoryAllocation : cudaSuccess);
}

cudaError_t cudaMallocHost(void** ptr, size_t size) { return cudaHostAlloc(ptr, size, cudaHostAllocDefault); }

cudaError_t cudaFreeHost(void* ptr) {
  if (ptr == nullptr) return api_result(cudaSuccess);
  synchronize_all();  // a queued copy may still read it
  return api_result(pinned_release(ptr) ? cudaSuccess : cudaErrorInvalidValue);
}

cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void* ptr) {
  if (a == nullptr) return api_result(cudaErrorInvalidValue);
  *a = cudaPointerAttributes{};
  switch (where(ptr)) {
    case Where::Device:
      a->type = cudaMemoryTypeDevice;
      a->devicePointer = const_cast<void*>(ptr);
      break;
    case Where::Pinned:
      a->type = cudaMemoryTypeHost;
      a->devicePointer = a->hostPointer = const_cast<void*>(ptr);
      break;
    case Where::Pageable:
      a->type = cudaMemoryTypeUnregistered;
      a->device = -2;
      break;
  }
  return api_result(cudaSuccess);
}

// ---- copies and memsets ----

cudaError_t cudaMemcpy(void* dst, const void* src, size_t n, cudaMemcpyKind kind) {
  return copy(dst, src, n, kind, nullptr, true);
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t n, cudaMemcpyKind kind, cudaStream_t stream) {
  return copy(dst, src, n, kind, stream, false);
}

cudaError_t cudaMemcpyPeerAsync(void* dst, int dst_device, const void* src, int src_device, size_t n,
                                cudaStream_t stream) {
  if (dst_device != 0 || src_device != 0) return api_result(cudaErrorInvalidDevice);
  return copy(dst, src, n, cudaMemcpyDeviceToDevice, stream, false);
}

cudaError_t cudaMemset(void* ptr, int value, size_t n) { return set(ptr, value, n, nullptr, true); }

cudaError_t cudaMemsetAsync(void* ptr, int value, size_t n, cudaStream_t stream) {
  return set(ptr, value, n, stream, false);
}

}  // extern "C"
