// Registers the CUDA DeviceBackend at load time (tensor/backend.h), and page-locked host tensors.
// On a machine without a GPU or driver the backend is still registered (the library was built
// with CUDA) and reports 0 devices, so cuda::is_available() is false and tests skip.
#include <cstdio>

#include "tensor/cuda/allocator.h"
#include "tensor/cuda/context.h"
#include "tensor/cuda/transfer.h"
#include "tensor/tensor.h"

namespace gndet::cuda {
namespace {

int backend_device_count() {
  static const int count = [] {
    int n = 0;
    const cudaError_t err = cudaGetDeviceCount(&n);
    if (err != cudaSuccess) {
      // No driver, no device, or a driver older than the runtime: no usable GPU. Said once, on
      // stderr, because "0 GPUs" alone hides a broken driver.
      (void)cudaGetLastError();
      if (err != cudaErrorNoDevice) {
        std::fprintf(stderr, "gndet: CUDA unavailable: %s (%s)\n", cudaGetErrorName(err), cudaGetErrorString(err));
      }
      return 0;
    }
    return std::min(n, kMaxDevices);
  }();
  return count;
}

Allocator* backend_allocator(int device) { return &caching_allocator(device); }

void backend_synchronize(int device) {
  DeviceGuard guard(device);
  GNDET_CUDA_CHECK(cudaDeviceSynchronize());
}

const DeviceBackend kCudaBackend{backend_device_count, backend_allocator, backend_synchronize};

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
