// Registers the CUDA DeviceBackend at load time (tensor/backend.h), and page-locked host tensors.
// On a machine without a GPU or driver the backend is still registered (the library was built
// with CUDA) and reports 0 devices, so cuda::is_available() is false and tests skip.
#include <filesystem>
#include <string>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/transfer.h"
#include "tensor/tensor.h"

namespace gndet::cuda {
namespace {

// Why no GPU can be used, empty when one can. Kept rather than printed: a CUDA build on a machine
// without a GPU says nothing until a GPU is asked for (backend_for() then names the cause).
std::string& unavailable_reason_storage() {
  static std::string reason;
  return reason;
}

std::string describe_failure(cudaError_t err) {
  if (err == cudaErrorNoDevice) return "no CUDA GPU found";
  // Without a driver the runtime reports cudaErrorInsufficientDriver ("driver version is
  // insufficient"), which reads like an old driver; the driver's /proc entry tells the two apart.
  if (err == cudaErrorInsufficientDriver && !std::filesystem::exists("/proc/driver/nvidia/version")) {
    return "no NVIDIA driver is installed or loaded";
  }
  return std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
}

int backend_device_count() {
  static const int count = [] {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      // No driver, no device, or a driver older than the runtime: no usable GPU.
      (void)cudaGetLastError();
      unavailable_reason_storage() = describe_failure(err);
      return 0;
    }
    if (n == 0) unavailable_reason_storage() = "no CUDA GPU found";
    return std::min(n, kMaxDevices);
  }();
  return count;
}

std::string backend_unavailable_reason() {
  backend_device_count();
  return unavailable_reason_storage();
}

Allocator* backend_allocator(int device) { return &caching_allocator(device); }

void backend_synchronize(int device) {
  DeviceGuard guard(device);
  GNDET_CUDA_CHECK(cudaDeviceSynchronize());
}

std::string backend_device_name(int device) { return device_properties(device).name; }

const DeviceBackend kCudaBackend{backend_device_count, backend_allocator,        backend_synchronize,
                                 backend_unavailable_reason, backend_device_name, GNDET_CUDA_EMULATED != 0};

[[maybe_unused]] const bool kRegistered = [] {
  register_backend(DeviceType::CUDA, &kCudaBackend);
  return true;
}();

}  // namespace

Tensor empty_pinned(const Shape& shape, DType dtype) {
  for (int64_t s : shape) GNDET_CHECK(s >= 0, "empty_pinned: negative size in shape ", shape_str(shape));
  GNDET_CHECK(is_available(), "empty_pinned: page-locked memory needs a CUDA GPU, and none is present");
  const size_t nbytes = static_cast<size_t>(shape_numel(shape)) * itemsize(dtype);
  void* p = nbytes == 0 ? nullptr : pinned_alloc(nbytes);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(p, nbytes, kCPU, [](void* q) { pinned_free(q); });
  impl->sizes = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

bool is_pinned(const Tensor& t) { return t.device().is_cpu() && is_pinned_pointer(t.storage()->data()); }

}  // namespace gndet::cuda
