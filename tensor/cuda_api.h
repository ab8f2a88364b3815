// The CUDA-facing API that any code may use, with or without the CUDA headers: memory statistics
// of the caching allocator, streams, page-locked host tensors and the TF32 switch. The device
// count, availability and synchronize() live in tensor/backend.h.
//
// In a build without CUDA every function here throws "gndet was built without CUDA", except the
// TF32 switch, which is a harmless setting there (set_allow_tf32 is ignored, allow_tf32 is false).
#pragma once

#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace gndet::cuda {

// ---- the caching allocator (tensor/cuda/allocator.h) ----

struct MemoryStats {
  int64_t allocated_bytes = 0;       // held by live tensors (block sizes, after rounding)
  int64_t requested_bytes = 0;       // held by live tensors, as asked for
  int64_t reserved_bytes = 0;        // taken from the driver by cudaMalloc and not given back
  int64_t peak_allocated_bytes = 0;  // since start-up or the last reset_peak_memory_stats
  int64_t peak_reserved_bytes = 0;
  int64_t num_allocs = 0;            // allocations served (cached or not)
  int64_t num_cuda_mallocs = 0;      // cudaMalloc calls: constant in steady state
  int64_t num_cuda_frees = 0;        // cudaFree calls (empty_cache, out-of-memory retries)
  int64_t num_oom_retries = 0;       // cudaMalloc failures retried after freeing the cache
};

MemoryStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
// Returns every cached block that no tensor uses to the driver (waits for pending stream uses).
void empty_cache(int device = 0);
// One line for training logs: "allocated 1.20 GiB (peak 3.41 GiB), reserved 4.00 GiB, cudaMalloc 57".
std::string memory_summary(int device = 0);

// ---- streams ----

// A CUDA stream, opaque to code compiled without the CUDA headers (handle is a cudaStream_t).
// The default value is the legacy default stream of device 0.
struct Stream {
  int device = 0;
  void* handle = nullptr;  // nullptr: the legacy default stream
  bool operator==(const Stream&) const = default;
};

// The stream that ops on `device` use in this thread: the legacy default stream unless a
// StreamGuard says otherwise.
Stream current_stream(int device = 0);
// A non-blocking stream from a small per-device pool (round robin; streams live for the process).
Stream stream_from_pool(int device = 0);
void synchronize_stream(Stream stream);
// Work queued on `waiter` after this call waits for the work queued on `producer` before it.
void wait_stream(Stream waiter, Stream producer);
// Tells the allocator that `t`'s memory is used by work on `stream`, so that when t's storage is
// freed its block is reused only after that work is done. Needed whenever a tensor allocated on
// one stream is used on another (e.g. a batch copied on a side stream, consumed on the main one).
void record_stream(const Tensor& t, Stream stream);

// Makes `stream` the current stream of its device for this thread, for the guard's scope.
class StreamGuard {
 public:
  explicit StreamGuard(Stream stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream prev_;
};

// ---- page-locked host memory ----

// An uninitialised contiguous CPU tensor in page-locked (pinned) memory, from a cache: copies
// between it and a GPU skip the driver's staging buffer. For data loaders' batches.
Tensor empty_pinned(const Shape& shape, DType dtype = kFloat32);
bool is_pinned(const Tensor& t);  // a CPU tensor whose memory is page-locked

// ---- math modes ----

// TF32 tensor-core math for float32 matrix products (and cuDNN convolutions): ~10 mantissa bits
// per product, accumulation in float32. On by default, like PyTorch's default for cuDNN; the
// environment variable GNDET_ALLOW_TF32=0 turns it off at start-up; parity tests turn it off.
void set_allow_tf32(bool allow);
bool allow_tf32();

}  // namespace gndet::cuda
