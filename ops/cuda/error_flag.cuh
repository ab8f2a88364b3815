// A device-side "first bad value" slot for kernels that validate their data (a class index, an
// RoI's batch index) and cannot throw: the first thread that meets a bad value claims the flag
// with atomicCAS and stores the value and where it was met; the launcher reads the slot back
// after the kernel and raises the same gndet::Error as the CPU kernel. The read-back costs one
// stream synchronisation per call: the price of an error that names the value instead of a
// silently wrong result (the convention of ops/cuda/index.cu).
#pragma once

#include <cstdint>

#include "tensor/cuda/context.h"
#include "tensor/factory.h"

namespace gndet::cuda {

struct ErrorSlot {
  unsigned long long* slot;  // [0]: claimed (0 / 1), [1]: the value, [2]: where (as bits)
  __device__ void note(int64_t value, int64_t where) const {
    if (atomicCAS(slot, 0ull, 1ull) == 0ull) {
      slot[1] = static_cast<unsigned long long>(value);
      slot[2] = static_cast<unsigned long long>(where);
    }
  }
};

class ErrorFlag {
 public:
  // Zeroed on `stream` before the kernels that use slot().
  ErrorFlag(Device device, cudaStream_t stream) : stream_(stream) {
    buf_ = empty({3}, TensorOptions(kInt64, device));
    GNDET_CUDA_CHECK(cudaMemsetAsync(buf_.raw_data(), 0, 3 * sizeof(int64_t), stream_));
  }
  ErrorSlot slot() const { return {static_cast<unsigned long long*>(buf_.raw_data())}; }
  // Waits for the stream; true (with the value and where) when a kernel noted a bad value.
  bool raised(int64_t* value, int64_t* where) const {
    int64_t host[3] = {0, 0, 0};
    GNDET_CUDA_CHECK(cudaMemcpyAsync(host, buf_.raw_data(), sizeof(host), cudaMemcpyDeviceToHost, stream_));
    GNDET_CUDA_CHECK(cudaStreamSynchronize(stream_));
    *value = host[1];
    *where = host[2];
    return host[0] != 0;
  }

 private:
  cudaStream_t stream_;
  Tensor buf_;
};

}  // namespace gndet::cuda
