// Host memory for CPU tensors: 64-byte aligned blocks from the C heap, with a cache of large
// freed blocks.
//
// Why a cache: a detector allocates and frees gigabytes per iteration in blocks of tens of MB
// (feature maps, column buffers). glibc serves blocks of 32 MB and more (often less) with mmap
// and returns them with munmap, so every such tensor is page-faulted in again, 4 KiB at a time,
// by the kernel that first writes it: on the R-50 Mask R-CNN inference of bench/model_iteration
// that was 2.4 M page faults and a fifth of the CPU time in the kernel. Keeping freed blocks for
// the next tensor of the same size class removes nearly all of it (bench/results/cpu_vs_pytorch.md).
//
//  - Blocks of at least kMinCached bytes are rounded up to a size class (16 classes per power of
//    two: at most 6.25% larger than asked) and, when freed, kept for a request of the same class.
//    Smaller blocks go straight to malloc / free, which already reuses them well.
//  - The cache holds at most limit bytes (GNDET_CPU_CACHE_MB, default 1024; 0 turns caching
//    off); a free that would exceed it first returns the least recently cached blocks to the C
//    heap. Memory held by live tensors is not limited by it. When the C heap cannot serve a
//    request, the whole cache is given back first and the request retried once.
//  - Thread-safe (one mutex; data-loader threads allocate too). Never destroyed, so tensors freed
//    during static destruction still find it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gndet {

struct CpuCacheStats {
  int64_t cached_bytes = 0;  // in freed blocks kept for reuse
  int64_t limit_bytes = 0;   // the most the cache may hold
  int64_t hits = 0;          // allocations served from the cache
  int64_t misses = 0;        // cacheable allocations that went to the C heap
  int64_t releases = 0;      // cached blocks given back to make room
};

CpuCacheStats cpu_cache_stats();
// Gives every cached block back to the C heap.
void cpu_empty_cache();
// bytes >= 0; lowering it below what is cached releases blocks at once.
void set_cpu_cache_limit(int64_t bytes);

// The size class of a cacheable request (exposed for tests): >= nbytes, a multiple of 64.
size_t cpu_cache_size_class(size_t nbytes);
inline constexpr size_t kMinCached = size_t{256} << 10;

}  // namespace gndet
