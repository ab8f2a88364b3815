// The CUDA caching allocator (design in allocator.h) and the public memory-statistics API.
#include "tensor/cuda/allocator.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdint>

#include "tensor/cuda/context.h"
#include "tensor/error.h"

#if GNDET_CUDA_EMULATED
// The emulated device's memcheck sees tensor blocks, not only segments (docs/emulator.md).
#include "tensor/cuda/emulator/emulator.h"
#endif

namespace gndet::cuda {

namespace {

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

std::string format_bytes(int64_t n) {
  char buf[32];
  const double v = static_cast<double>(n);
  if (n >= (int64_t{1} << 30)) {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", v / (1 << 30));
  } else if (n >= (int64_t{1} << 20)) {
    std::snprintf(buf, sizeof(buf), "%.2f MiB", v / (1 << 20));
  } else if (n >= 1024) {
    std::snprintf(buf, sizeof(buf), "%.2f KiB", v / 1024);
  } else {
    std::snprintf(buf, sizeof(buf), "%" PRId64 " B", n);
  }
  return buf;
}

}  // namespace

bool CachingAllocator::BySize::operator()(const Block* a, const Block* b) const {
  const auto sa = reinterpret_cast<uintptr_t>(a->stream), sb = reinterpret_cast<uintptr_t>(b->stream);
  if (sa != sb) return sa < sb;
  if (a->size != b->size) return a->size < b->size;
  return reinterpret_cast<uintptr_t>(a->ptr) < reinterpret_cast<uintptr_t>(b->ptr);
}

// The smallest free block of `stream` holding at least `size` bytes (best fit), or nullptr.
CachingAllocator::Block* CachingAllocator::find_free(Pool& pool, cudaStream_t stream, size_t size) {
  Block key;
  key.stream = stream;
  key.size = size;
  key.ptr = nullptr;  // sorts before every block of this (stream, size)
  const auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  return *it;
}

void* CachingAllocator::allocate(size_t nbytes) {
  if (nbytes == 0) return nullptr;
  GNDET_CHECK(nbytes <= (size_t{1} << 52), "CUDA allocation of ", nbytes, " bytes on cuda:", device_,
              " is beyond any device's memory");
  const size_t size = round_up(nbytes, kRound);
  const bool small = size <= kSmallRequest;
  std::lock_guard<std::mutex> lock(mu_);
  process_events();
  const cudaStream_t stream = stream_for(device_);
  Pool& pool = small ? small_pool_ : large_pool_;
  Block* b = find_free(pool, stream, size);
  if (b != nullptr) {
    pool.erase(b);
  } else {
    const size_t segment = small ? kSmallSegment : size < kMidRequest ? kLargeSegment : round_up(size, kLargeRound);
    b = new_segment(segment, nbytes, stream, small);
  }
  // Split off the rest when it is worth keeping. Its neighbours are not free (free neighbours
  // are always merged), so it goes straight into the pool.
  const size_t rest = b->size - size;
  if (small ? rest >= kRound : rest > kSmallRequest) {
    Block* r = new Block;
    r->stream = stream;
    r->ptr = b->ptr + size;
    r->size = rest;
    r->small = small;
    r->prev = b;
    r->next = b->next;
    if (b->next != nullptr) b->next->prev = r;
    b->next = r;
    b->size = size;
    pool.insert(r);
  }
  b->allocated = true;
  b->requested = nbytes;
  live_[b->ptr] = b;
#if GNDET_CUDA_EMULATED
  emu::note_block_live(b->ptr, nbytes, stream);
#endif
  stats_.allocated_bytes += static_cast<int64_t>(b->size);
  stats_.requested_bytes += static_cast<int64_t>(nbytes);
  stats_.peak_allocated_bytes = std::max(stats_.peak_allocated_bytes, stats_.allocated_bytes);
  ++stats_.num_allocs;
  return b->ptr;
}

CachingAllocator::Block* CachingAllocator::new_segment(size_t segment_size, size_t request, cudaStream_t stream,
                                                       bool small) {
  DeviceGuard guard(device_);
  void* p = nullptr;
  cudaError_t err = cudaMalloc(&p, segment_size);
  if (err == cudaErrorMemoryAllocation) {
    (void)cudaGetLastError();  // not sticky: clear it so that later checks do not see it
    ++stats_.num_oom_retries;
    sync_all_events();
    release_cached();
    err = cudaMalloc(&p, segment_size);
    if (err == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();
      throw_oom(request, segment_size, err);
    }
  }
  check_cuda(err, "cudaMalloc", __FILE__, __LINE__);
#if GNDET_CUDA_EMULATED
  emu::note_segment(p, segment_size);
#endif
  ++stats_.num_cuda_mallocs;
  stats_.reserved_bytes += static_cast<int64_t>(segment_size);
  stats_.peak_reserved_bytes = std::max(stats_.peak_reserved_bytes, stats_.reserved_bytes);
  Block* b = new Block;
  b->stream = stream;
  b->ptr = static_cast<char*>(p);
  b->size = segment_size;
  b->small = small;
  return b;
}

void CachingAllocator::throw_oom(size_t request, size_t segment_size, cudaError_t err) {
  size_t free_bytes = 0, total_bytes = 0;
  if (cudaMemGetInfo(&free_bytes, &total_bytes) != cudaSuccess) (void)cudaGetLastError();
  GNDET_FAIL("CUDA out of memory on cuda:", device_, ": tried to allocate ", format_bytes(static_cast<int64_t>(request)),
             " (", request, " bytes, in a new segment of ", format_bytes(static_cast<int64_t>(segment_size)),
             ") after freeing the cache; allocated ", format_bytes(stats_.allocated_bytes), " (peak ",
             format_bytes(stats_.peak_allocated_bytes), "), reserved ", format_bytes(stats_.reserved_bytes),
             ", cudaMalloc calls ", stats_.num_cuda_mallocs, "; the device has ", format_bytes(static_cast<int64_t>(free_bytes)),
             " free of ", format_bytes(static_cast<int64_t>(total_bytes)), " (", cudaGetErrorName(err), ")");
}

void CachingAllocator::deallocate(void* ptr, size_t) {
  if (ptr == nullptr) return;
  try {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = live_.find(ptr);
    if (it == live_.end()) {
      std::fprintf(stderr, "gndet: CUDA caching allocator of cuda:%d asked to free unknown pointer %p\n", device_, ptr);
      return;
    }
    Block* b = it->second;
    live_.erase(it);
    stats_.allocated_bytes -= static_cast<int64_t>(b->size);
    stats_.requested_bytes -= static_cast<int64_t>(b->requested);
    if (!b->stream_uses.empty()) {
      DeviceGuard guard(device_);
      for (cudaStream_t s : b->stream_uses) {
        cudaEvent_t ev = nullptr;
        if (!spare_events_.empty()) {
          ev = spare_events_.back();
          spare_events_.pop_back();
        } else {
          GNDET_CUDA_CHECK(cudaEventCreateWithFlags(&ev, cudaEventDisableTiming));
        }
        GNDET_CUDA_CHECK(cudaEventRecord(ev, s));
        events_.emplace_back(ev, b);
        ++b->pending_events;
      }
      b->stream_uses.clear();
      return;  // freed by process_events once every event has completed
    }
    free_block(b);
  } catch (const std::exception& e) {
    // Only reachable when the runtime is failing (e.g. torn down at exit): the block stays out of
    // the cache, which is safe.
    std::fprintf(stderr, "gndet: CUDA caching allocator of cuda:%d: %s\n", device_, e.what());
  }
}

void CachingAllocator::free_block(Block* b) {
#if GNDET_CUDA_EMULATED
  emu::note_block_free(b->ptr, b->size, b->stream);
#endif
  b->allocated = false;
  b->requested = 0;
  Pool& pool = pool_of(b);
  if (b->prev != nullptr && !b->prev->allocated) {
    Block* p = b->prev;
    pool.erase(p);  // before its size changes: the pool is ordered by size
    p->size += b->size;
    p->next = b->next;
    if (b->next != nullptr) b->next->prev = p;
    delete b;
    b = p;
  }
  if (b->next != nullptr && !b->next->allocated) {
    Block* n = b->next;
    pool.erase(n);
    b->size += n->size;
    b->next = n->next;
    if (n->next != nullptr) n->next->prev = b;
    delete n;
  }
  pool.insert(b);
}

void CachingAllocator::process_events() {
  for (auto it = events_.begin(); it != events_.end();) {
    const cudaError_t q = cudaEventQuery(it->first);
    if (q == cudaErrorNotReady) {
      (void)cudaGetLastError();  // "not ready" is recorded as the last error: clear it
      ++it;
      continue;
    }
    check_cuda(q, "cudaEventQuery", __FILE__, __LINE__);
    Block* b = it->second;
    spare_events_.push_back(it->first);
    it = events_.erase(it);
    if (--b->pending_events == 0) free_block(b);
  }
}

void CachingAllocator::sync_all_events() {
  for (auto& [ev, b] : events_) GNDET_CUDA_CHECK(cudaEventSynchronize(ev));
  process_events();
}

void CachingAllocator::release_cached() {
  DeviceGuard guard(device_);
  for (Pool* pool : {&small_pool_, &large_pool_}) {
    for (auto it = pool->begin(); it != pool->end();) {
      Block* b = *it;
      if (b->prev != nullptr || b->next != nullptr) {  // part of a segment still in use
        ++it;
        continue;
      }
      GNDET_CUDA_CHECK(cudaFree(b->ptr));
      stats_.reserved_bytes -= static_cast<int64_t>(b->size);
      ++stats_.num_cuda_frees;
      it = pool->erase(it);
      delete b;
    }
  }
}

void CachingAllocator::record_stream(void* ptr, cudaStream_t stream) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = live_.find(ptr);
  GNDET_CHECK(it != live_.end(), "record_stream: memory at ", ptr, " was not allocated by the caching allocator of cuda:",
              device_);
  Block* b = it->second;
  if (stream == b->stream) return;
  if (std::find(b->stream_uses.begin(), b->stream_uses.end(), stream) == b->stream_uses.end()) {
    b->stream_uses.push_back(stream);
  }
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_allocated_bytes = stats_.allocated_bytes;
  stats_.peak_reserved_bytes = stats_.reserved_bytes;
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  sync_all_events();
  release_cached();
}

CachingAllocator& caching_allocator(int device) {
  GNDET_CHECK(device >= 0 && device < kMaxDevices, "CUDA device index ", device, " out of range");
  static std::once_flag once[kMaxDevices];
  static CachingAllocator* allocators[kMaxDevices] = {};
  std::call_once(once[device], [&] { allocators[device] = new CachingAllocator(device); });  // never freed (allocator.h)
  return *allocators[device];
}

// ---- public API (tensor/cuda_api.h) ----

namespace {
CachingAllocator& checked_allocator(int device) {
  (void)backend_for(Device::cuda(device));  // throws naming the device when it does not exist
  return caching_allocator(device);
}
}  // namespace

MemoryStats memory_stats(int device) { return checked_allocator(device).stats(); }
void reset_peak_memory_stats(int device) { checked_allocator(device).reset_peak(); }
void empty_cache(int device) { checked_allocator(device).empty_cache(); }

std::string memory_summary(int device) {
  const MemoryStats s = memory_stats(device);
  return "allocated " + format_bytes(s.allocated_bytes) + " (peak " + format_bytes(s.peak_allocated_bytes) +
         "), reserved " + format_bytes(s.reserved_bytes) + ", cudaMalloc " + std::to_string(s.num_cuda_mallocs);
}

void record_stream(const Tensor& t, Stream stream) {
  GNDET_CHECK(t.is_cuda(), "record_stream: tensor of shape ", shape_str(t.shape()), " is on ", t.device().str());
  GNDET_CHECK(stream.device == t.device().index, "record_stream: stream of cuda:", stream.device, " for a tensor on ",
              t.device().str());
  if (t.storage()->data() == nullptr) return;  // an empty tensor owns no memory
  checked_allocator(stream.device).record_stream(t.storage()->data(), static_cast<cudaStream_t>(stream.handle));
}

}  // namespace gndet::cuda
