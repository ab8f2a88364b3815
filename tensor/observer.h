// The seam through which a profiler above this layer (autograd/profiler.h) sees every kernel call
// (Kernel<>, tensor/dispatch.h) and every storage allocation. Null unless a profiler runs, so
// with it off the cost is one relaxed atomic load and a predicted branch per kernel call or
// allocation.
#pragma once

#include <atomic>
#include <cstdint>

#include "tensor/device.h"

namespace gndet {

class ExecutionObserver {
 public:
  virtual ~ExecutionObserver() = default;
  virtual void kernel_begin(const char* kernel, Device device) = 0;
  virtual void kernel_end() = 0;
  virtual void allocated(int64_t bytes, Device device) = 0;
};

inline std::atomic<ExecutionObserver*> g_execution_observer{nullptr};

inline ExecutionObserver* execution_observer() { return g_execution_observer.load(std::memory_order_relaxed); }

}  // namespace gndet
