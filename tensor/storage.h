// Storage: one allocation on one device, shared by every tensor that views it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

#include "tensor/backend.h"
#include "tensor/device.h"

namespace gndet {

class Storage {
 public:
  // Allocates `nbytes` on `device` through its allocator.
  Storage(size_t nbytes, Device device);
  // Wraps memory owned elsewhere; `deleter` (may be empty) runs when the storage dies.
  Storage(void* data, size_t nbytes, Device device, std::function<void(void*)> deleter);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

  // Bumped by every in-place write to any tensor viewing this storage; autograd compares it with
  // the value it saw when it saved a tensor for backward and refuses stale data.
  uint64_t version() const { return version_; }
  void bump_version() { ++version_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  std::function<void(void*)> deleter_;
  uint64_t version_ = 0;
};

}  // namespace gndet
