// Host memory for CPU tensors: small blocks from the C heap, large ones mapped from the kernel and
// kept in a cache when freed.
//
// Why a cache: a detector allocates and frees gigabytes per iteration in blocks of tens of MB
// (feature maps, column buffers). A freshly mapped block is page-faulted in, 4 KiB at a time, by
// the kernel that first writes it: on the R-50 Mask R-CNN inference of bench/model_iteration that
// was 2.4 M page faults and a fifth of the CPU time in the kernel. Keeping freed blocks for the
// next tensor of the same size class removes nearly all of it (bench/results/cpu_vs_pytorch.md).
//
//  - Blocks of at least kMinCached bytes are rounded up to a size class (16 classes per power of
//    two: at most 6.25% larger than asked), mapped with mmap and, when freed, kept. A request is
//    served by the smallest cached block that holds it (best fit, the most recently freed among
//    equals); a larger one is split, its tail staying cached, and a freed block merges with the
//    cached pieces next to it that were carved from the same mapping. (Keeping blocks only for
//    requests of their own class, R-50 Mask R-CNN inference mapped 70 new blocks per image and
//    training 173 per iteration, each page-faulted in again; split and merged, 0 and 1:
//    bench/results/cpu_vs_mmdet.md.) Smaller blocks go straight to malloc / free.
//  - The high-water rule bounds the cache: a request the cache cannot serve first unmaps cached
//    blocks, least recently cached first, until live + cached + new bytes fit under the peak of
//    live bytes so far plus kCacheSlack. Resident large blocks thus never exceed what the tensors
//    needed at their peak by more than the slack (a training iteration of R-50 Mask R-CNN: 4.3 GiB
//    max RSS, was 5.1 GiB with a 1 GiB cache on glibc's heap; bench/results/cpu_vs_pytorch.md).
//    The slack spares steps whose sizes vary (RoI counts) from remapping blocks all the time: with
//    none, the demo's training faulted 1.5 M pages per epoch, with it 0.34 M. The largest block
//    given back is mremap'd into the new one, so its resident pages are reused, not faulted in.
//    Any page-aligned piece of a mapping can be unmapped on its own, so every cached block can go.
//  - GNDET_CPU_CACHE_MB caps the cache further (default: no cap): a free that would exceed it
//    first unmaps the least recently cached blocks. 0 at start turns mapping and caching off for
//    the process: every block then comes from malloc, where AddressSanitizer sees it. When the
//    kernel cannot map a request, the whole cache is given back first and the request retried.
//  - Thread-safe (one mutex; data-loader threads allocate too). Never destroyed, so tensors freed
//    during static destruction still find it.
#pragma once

#include <cstddef>
#include <cstdint>

namespace gndet {

struct CpuCacheStats {
  int64_t cached_bytes = 0;  // in freed blocks kept for reuse
  int64_t limit_bytes = 0;   // the most the cache may hold
  int64_t hits = 0;          // allocations served from the cache (whole blocks or split ones)
  int64_t misses = 0;        // cacheable allocations that needed a new mapping
  int64_t releases = 0;      // cached blocks given back to make room
  // Bytes held by live CPU tensors (every size, cached classes counted at their class size), and
  // the most they reached since the start or the last reset_cpu_peak_memory(): what a step needs,
  // apart from the cache and the C heap's own overhead (max RSS includes both).
  int64_t allocated_bytes = 0;
  int64_t peak_allocated_bytes = 0;
  int64_t high_water_bytes = 0;  // the high-water rule's mark: the most live bytes seen at a miss
  // False when GNDET_CPU_CACHE_MB was 0 at start: then every block comes from the C heap and
  // nothing is cached, for the whole process (tools/sanitize: AddressSanitizer watches the heap).
  bool mapped = true;
};

CpuCacheStats cpu_cache_stats();
// Gives every cached block back to the C heap.
void cpu_empty_cache();
// bytes >= 0; lowering it below what is cached releases blocks at once.
void set_cpu_cache_limit(int64_t bytes);
// Starts peak_allocated_bytes again from what is allocated now.
void reset_cpu_peak_memory();

// The size class of a cacheable request (exposed for tests): >= nbytes, a multiple of 64.
size_t cpu_cache_size_class(size_t nbytes);
inline constexpr size_t kMinCached = size_t{256} << 10;
inline constexpr int64_t kCacheSlack = int64_t{256} << 20;

}  // namespace gndet
