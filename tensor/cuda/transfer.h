// Raw host <-> device copies of contiguous bytes, and the page-locked host memory cache they and
// cuda::empty_pinned use. Both copies are complete (and the host buffer free to reuse) on return.
#pragma once

#include <cstddef>

namespace gndet::cuda {

// On `device`'s current stream. Pinned host memory is copied directly; large pageable buffers go
// through two pinned staging chunks so that the host memcpy of one overlaps the DMA of the other.
void copy_host_to_device(void* dst, const void* src, size_t nbytes, int device);
void copy_device_to_host(void* dst, const void* src, size_t nbytes, int device);

// Page-locked host memory from a cache keyed by size (rounded up to a power of two, at least
// 4 KiB); pinned_free returns a block to the cache, the driver never sees it again.
void* pinned_alloc(size_t nbytes);
void pinned_free(void* ptr);
bool is_pinned_pointer(const void* ptr);

}  // namespace gndet::cuda
