// The emulated CUDA device's interface to the rest of gndet's CUDA backend, compiled only with
// -Dcuda=emulate. Nothing above tensor/cuda uses it: the caching allocator tells the emulator
// which parts of its segments hold live tensors (so memcheck sees a tensor's bounds, not only the
// 2 MiB segment's), and the CUB and NCCL stand-ins queue host work on streams through it.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <functional>
#include <string>

namespace gndet::cuda::emu {

// ---- the caching allocator's blocks (tensor/cuda/allocator.cpp) ----

// `ptr, bytes` was taken by cudaMalloc to be cut into blocks: none of it is addressable by a
// kernel until a block in it is marked live.
void note_segment(void* ptr, size_t bytes);
// A block handed to a tensor of `requested` bytes (rounded up to 4 bytes, the granule of the
// byte-wise atomic CAS in ops/cuda/index.cu) on `stream`: addressable at once, or, when the free of
// its memory is still queued, once `stream` has run it.
void note_block_live(void* ptr, size_t requested, cudaStream_t stream);
// A block back in the cache: not addressable once the work queued on `stream` before this call
// has run (stream-ordered, as the block's reuse is), unless a live block overlaps it by then.
void note_block_free(void* ptr, size_t bytes, cudaStream_t stream);

// ---- host work in stream order (CUB and NCCL stand-ins) ----

// Raised by checks inside stream work: the device takes a sticky error with this report.
struct DeviceFault {
  cudaError_t error;
  std::string report;
};

// Queues `work` on `stream` (host code run by the stream's executor in order with its kernels and
// copies). A DeviceFault thrown by it becomes the device's sticky error. Returns the error of the
// call itself (a bad stream, an earlier sticky error).
cudaError_t enqueue_host_work(cudaStream_t stream, const char* what, std::function<void()> work);
// Throws DeviceFault unless [ptr, ptr + bytes) is addressable device memory (a live block or a
// plain cudaMalloc allocation). `what` names the operand for the report ("SortPairs keys_in").
void check_device_range(const void* ptr, size_t bytes, const char* what);
// Whether `ptr` lies in emulated device memory at all.
bool is_device_pointer(const void* ptr);
// Stream work and kernels run on threads that may touch device memory; other host threads may
// not (memory protection keys, where the CPU has them). For host threads the stand-ins start.
void allow_device_access_on_this_thread();

// ---- what the emulator is ----

// One paragraph: workers, schedule, which checks are on (the [cuda] tests print it once).
std::string describe();

}  // namespace gndet::cuda::emu
