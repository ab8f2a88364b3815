// Small definitions of the tensor layer: errors, dtypes, devices, backends, storage.
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>

#include "tensor/backend.h"
#include "tensor/dtype.h"
#include "tensor/error.h"
#include "tensor/observer.h"
#include "tensor/storage.h"

namespace gndet {

std::string shape_str(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + ")";
}

size_t itemsize(DType t) {
  switch (t) {
    case kFloat32: return 4;
    case kFloat64: return 8;
    case kInt64: return 8;
    case kInt32: return 4;
    case kUInt8: return 1;
    case kBool: return 1;
    case kBFloat16: return 2;
    case kFloat16: return 2;
  }
  return 0;
}

const char* dtype_name(DType t) {
  switch (t) {
    case kFloat32: return "float32";
    case kFloat64: return "float64";
    case kInt64: return "int64";
    case kInt32: return "int32";
    case kUInt8: return "uint8";
    case kBool: return "bool";
    case kBFloat16: return "bfloat16";
    case kFloat16: return "float16";
  }
  return "?";
}

Device Device::parse(const std::string& s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5) {
    char* end = nullptr;
    const long idx = std::strtol(s.c_str() + 5, &end, 10);
    if (*end == '\0' && idx >= 0 && idx < 1024) return cuda(static_cast<int>(idx));
  }
  GNDET_FAIL("unknown device '", s, "' (expected cpu, cuda or cuda:N)");
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

// ---- backends ----

namespace {

const DeviceBackend* g_backends[kNumDeviceTypes] = {};

}  // namespace

void register_backend(DeviceType type, const DeviceBackend* backend) {
  g_backends[static_cast<int>(type)] = backend;
}

const DeviceBackend& backend_for(Device device) {
  const DeviceBackend* b = g_backends[static_cast<int>(device.type)];
  GNDET_CHECK(b != nullptr, "device ", device.str(), " requested, but gndet was built without CUDA");
  const int n = b->device_count();
  GNDET_CHECK(device.index >= 0 && device.index < n, "device ", device.str(), " requested, but ",
              n == 0 ? "no CUDA GPU is present (" + b->unavailable_reason() + ")"
                     : "only " + std::to_string(n) + " CUDA device(s) are present");
  return *b;
}

Allocator* allocator_for(Device device) {
  if (device.is_cpu()) return cpu_allocator();
  return backend_for(device).allocator(device.index);
}

namespace cuda {
bool is_built() { return g_backends[static_cast<int>(DeviceType::CUDA)] != nullptr; }
int device_count() { return is_built() ? g_backends[static_cast<int>(DeviceType::CUDA)]->device_count() : 0; }
bool is_available() { return device_count() > 0; }
std::string unavailable_reason() {
  if (!is_built()) return "gndet was built without CUDA";
  return g_backends[static_cast<int>(DeviceType::CUDA)]->unavailable_reason();
}
void synchronize(int device) { backend_for(Device::cuda(device)).synchronize(device); }
bool is_emulated() { return is_built() && g_backends[static_cast<int>(DeviceType::CUDA)]->emulated; }
}  // namespace cuda

std::string describe(Device device) {
  if (device.is_cpu()) return device.str();
  return device.str() + " (" + backend_for(device).device_name(device.index) + ")";
}

// ---- storage ----

Storage::Storage(size_t nbytes, Device device)
    : nbytes_(nbytes), device_(device), allocator_(allocator_for(device)) {
  data_ = allocator_->allocate(nbytes);
  if (ExecutionObserver* o = execution_observer()) [[unlikely]] o->allocated(static_cast<int64_t>(nbytes), device);
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter)
    : data_(data), nbytes_(nbytes), device_(device), deleter_(std::move(deleter)) {}

Storage::~Storage() {
  if (allocator_ != nullptr) {
    allocator_->deallocate(data_, nbytes_);
  } else if (deleter_) {
    deleter_(data_);
  }
}

}  // namespace gndet
