// Host <-> device byte copies and the pinned host memory cache (transfer.h).
#include "tensor/cuda/transfer.h"

#include <cstdio>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "tensor/cuda/context.h"
#include "tensor/error.h"

namespace gndet::cuda {

namespace {

// Below this a single cudaMemcpyAsync is as fast as anything: the copy is latency-bound.
constexpr size_t kStageThreshold = size_t{1} << 20;
// Staging chunk: large enough to amortise a DMA launch (~10 us), small enough that the host memcpy
// of one chunk and the DMA of the other overlap for most of the copy.
constexpr size_t kStageChunk = size_t{4} << 20;

struct PinnedCache {
  std::mutex mu;
  std::unordered_multimap<size_t, void*> free_blocks;
  std::unordered_map<void*, size_t> size_of;
};
PinnedCache& pinned_cache() {
  static auto* cache = new PinnedCache;  // never destroyed: pinned tensors may die during static destruction
  return *cache;
}

size_t pinned_bucket(size_t n) {
  size_t b = 4096;
  while (b < n) b <<= 1;
  return b;
}

// Two pinned chunks and their events. On an error the chunks may still be read by a DMA in
// flight, so they are then leaked rather than returned to the cache.
struct Staging {
  char* buf[2] = {};
  cudaEvent_t ev[2] = {};
  bool done = false;
  Staging() {
    for (int k = 0; k < 2; ++k) {
      buf[k] = static_cast<char*>(pinned_alloc(kStageChunk));
      GNDET_CUDA_CHECK(cudaEventCreateWithFlags(&ev[k], cudaEventDisableTiming));
    }
  }
  ~Staging() {
    for (int k = 0; k < 2; ++k) {
      if (ev[k] != nullptr) (void)cudaEventDestroy(ev[k]);
      if (done) pinned_free(buf[k]);
    }
  }
};

}  // namespace

void* pinned_alloc(size_t nbytes) {
  const size_t bucket = pinned_bucket(nbytes);
  PinnedCache& c = pinned_cache();
  {
    std::lock_guard<std::mutex> lock(c.mu);
    const auto it = c.free_blocks.find(bucket);
    if (it != c.free_blocks.end()) {
      void* p = it->second;
      c.free_blocks.erase(it);
      return p;
    }
  }
  void* p = nullptr;
  // Portable: page-locked for every device's context, not only the current one.
  cudaError_t err = cudaHostAlloc(&p, bucket, cudaHostAllocPortable);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();
    std::lock_guard<std::mutex> lock(c.mu);  // give the cached blocks back and retry once
    for (auto& [size, q] : c.free_blocks) {
      (void)cudaFreeHost(q);
      c.size_of.erase(q);
    }
    c.free_blocks.clear();
    err = cudaHostAlloc(&p, bucket, cudaHostAllocPortable);
  }
  GNDET_CHECK(err == cudaSuccess, "pinned host allocation of ", nbytes, " bytes failed: ", cudaGetErrorString(err));
  std::lock_guard<std::mutex> lock(c.mu);
  c.size_of[p] = bucket;
  return p;
}

void pinned_free(void* ptr) {
  if (ptr == nullptr) return;
  PinnedCache& c = pinned_cache();
  std::lock_guard<std::mutex> lock(c.mu);
  const auto it = c.size_of.find(ptr);
  if (it == c.size_of.end()) {
    std::fprintf(stderr, "gndet: pinned memory cache asked to free unknown pointer %p\n", ptr);
    return;
  }
  c.free_blocks.emplace(it->second, ptr);
}

bool is_pinned_pointer(const void* ptr) {
  if (ptr == nullptr) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, ptr) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return attr.type == cudaMemoryTypeHost;
}

void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  const cudaStream_t stream = stream_for(device);
  const bool pinned = is_pinned_pointer(src);
  if (pinned || nbytes < kStageThreshold) {
    GNDET_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, stream));
    // A pageable source has been staged by the driver when the call returns; a pinned one is read
    // by the DMA engine later, and the caller may free or rewrite it as soon as we return.
    if (pinned) GNDET_CUDA_CHECK(cudaStreamSynchronize(stream));
    return;
  }
  Staging st;
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  const size_t nchunks = (nbytes + kStageChunk - 1) / kStageChunk;
  for (size_t i = 0; i < nchunks; ++i) {
    const int k = static_cast<int>(i % 2);
    const size_t off = i * kStageChunk, len = std::min(kStageChunk, nbytes - off);
    if (i >= 2) GNDET_CUDA_CHECK(cudaEventSynchronize(st.ev[k]));  // chunk i-2's DMA has drained buf[k]
    std::memcpy(st.buf[k], s + off, len);
    GNDET_CUDA_CHECK(cudaMemcpyAsync(d + off, st.buf[k], len, cudaMemcpyHostToDevice, stream));
    GNDET_CUDA_CHECK(cudaEventRecord(st.ev[k], stream));
  }
  for (size_t i = nchunks > 2 ? nchunks - 2 : 0; i < nchunks; ++i) GNDET_CUDA_CHECK(cudaEventSynchronize(st.ev[i % 2]));
  st.done = true;
}

void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device) {
  if (nbytes == 0) return;
  DeviceGuard guard(device);
  const cudaStream_t stream = stream_for(device);
  if (nbytes < kStageThreshold || is_pinned_pointer(dst)) {
    GNDET_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, stream));
    GNDET_CUDA_CHECK(cudaStreamSynchronize(stream));
    return;
  }
  Staging st;
  char* d = static_cast<char*>(dst);
  const char* s = static_cast<const char*>(src);
  const size_t nchunks = (nbytes + kStageChunk - 1) / kStageChunk;
  auto issue = [&](size_t i) {
    const int k = static_cast<int>(i % 2);
    const size_t off = i * kStageChunk, len = std::min(kStageChunk, nbytes - off);
    GNDET_CUDA_CHECK(cudaMemcpyAsync(st.buf[k], s + off, len, cudaMemcpyDeviceToHost, stream));
    GNDET_CUDA_CHECK(cudaEventRecord(st.ev[k], stream));
  };
  issue(0);
  for (size_t i = 0; i < nchunks; ++i) {
    // buf[(i+1)%2] held chunk i-1, which the previous iteration has already copied out.
    if (i + 1 < nchunks) issue(i + 1);
    const int k = static_cast<int>(i % 2);
    const size_t off = i * kStageChunk, len = std::min(kStageChunk, nbytes - off);
    GNDET_CUDA_CHECK(cudaEventSynchronize(st.ev[k]));
    std::memcpy(d + off, st.buf[k], len);
  }
  st.done = true;
}

}  // namespace gndet::cuda
