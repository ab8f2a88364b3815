// The seam between the device-independent core and a device backend (CUDA). The CUDA backend
// registers itself at load time; a build without CUDA registers nothing, so asking for a CUDA
// tensor raises "gndet was built without CUDA" instead of crashing.
#pragma once

#include <cstddef>
#include <string>

#include "tensor/device.h"

namespace gndet {

class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
};

// 64-byte aligned host memory.
Allocator* cpu_allocator();

struct DeviceBackend {
  int (*device_count)();
  Allocator* (*allocator)(int device);
  void (*synchronize)(int device);
  std::string (*unavailable_reason)();  // why device_count() is 0 (no driver, no GPU), else empty
  std::string (*device_name)(int device);  // "NVIDIA H100 80GB HBM3", "emulated CUDA device (CPU)"
  bool emulated;  // the emulated CUDA device (-Dcuda=emulate): a test instrument, never timed
};

void register_backend(DeviceType type, const DeviceBackend* backend);
// The backend for `device`; throws when it was not built or the index is out of range.
const DeviceBackend& backend_for(Device device);
Allocator* allocator_for(Device device);

namespace cuda {
bool is_built();      // the library was compiled with the CUDA backend
bool is_available();  // ... and at least one GPU is present
int device_count();   // 0 when not available
// Why is_available() is false ("no NVIDIA driver ...", "no CUDA GPU found", "built without CUDA"),
// empty when it is true. Nothing is printed until someone asks.
std::string unavailable_reason();
void synchronize(int device = 0);
// The build's CUDA device is the emulated one (docs/emulator.md): kernels run on the CPU, checked,
// and no time measured on it says anything about a GPU.
bool is_emulated();
}  // namespace cuda

// How a device is named to people: "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)",
// "cuda:0 (emulated CUDA device (CPU))".
std::string describe(Device device);

}  // namespace gndet
