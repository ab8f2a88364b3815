// Emulated device memory: one reserved range of the address space that host allocations never
// use, so a device pointer is recognisable and a host access to it can be caught.
//
//  - cudaMalloc carves page-aligned allocations out of it (first fit), each followed by at least
//    one unmapped guard page; cudaFree unmaps. Pages outside allocations are PROT_NONE, so even
//    code without access checks faults there.
//  - A shadow byte per 8 bytes says what a kernel may touch: plain allocations whole, and inside
//    the caching allocator's segments only the live blocks (up to the bytes their tensor asked
//    for), so memcheck sees a tensor's bounds, not its 2 MiB segment's.
//  - Memory protection keys (where the CPU has them, Linux pkeys): the range carries a key that
//    only the emulator's stream executors and kernel workers enable; any other host thread that
//    dereferences a device pointer takes a fault, reported here with the allocation it hit.
#include <dlfcn.h>
#include <execinfo.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>

#include "tensor/cuda/emulator/internal.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace gndet::cuda::emu {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kLowGuard = 16 * kPage;
size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

std::string hex(uintptr_t a) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%" PRIxPTR, a);
  return buf;
}

struct sigaction g_previous_segv;
const bool kTraceBlocks = std::getenv("GNDET_EMU_TRACE_BLOCKS") != nullptr;

// A host thread touched device memory (protection-key fault), or a kernel touched unmapped device
// memory in a build without access checks: say which, then die as the fault would have.
void on_segv(int sig, siginfo_t* info, void* uctx) {
  DeviceMemory& mem = DeviceMemory::get();
  const uintptr_t a = reinterpret_cast<uintptr_t>(info->si_addr);
  if (mem.contains(a)) {
    char msg[512];
    const bool pkey = info->si_code == 4;  // SEGV_PKUERR
    const int n = std::snprintf(
        msg, sizeof(msg),
        "\ngndet emulated CUDA device: %s at %s, which is device memory%s\n", pkey ? "host code dereferenced a device pointer" : "a kernel or copy touched unmapped device memory",
        hex(a).c_str(),
        pkey ? " (copy it to the host first: Tensor::cpu(), cudaMemcpy)" : " (outside every live cudaMalloc allocation)");
    if (n > 0) (void)!write(2, msg, static_cast<size_t>(std::min<int>(n, sizeof(msg) - 1)));
    void* frames[48];
    const int depth = backtrace(frames, 48);
    backtrace_symbols_fd(frames, depth, 2);
    signal(SIGSEGV, SIG_DFL);
    raise(SIGSEGV);
    return;
  }
  if (g_previous_segv.sa_flags & SA_SIGINFO) {
    if (g_previous_segv.sa_sigaction != nullptr) return g_previous_segv.sa_sigaction(sig, info, uctx);
  } else if (g_previous_segv.sa_handler != SIG_DFL && g_previous_segv.sa_handler != SIG_IGN) {
    return g_previous_segv.sa_handler(sig);
  }
  signal(SIGSEGV, SIG_DFL);
  raise(SIGSEGV);
}

// cudaHostAlloc'ed blocks: start -> bytes.
std::mutex g_pinned_mu;
std::map<uintptr_t, size_t> g_pinned;

}  // namespace

DeviceMemory& DeviceMemory::get() {
  static DeviceMemory* m = new DeviceMemory;  // never destroyed: tensors may die at exit
  return *m;
}

DeviceMemory::DeviceMemory() {
  size_ = round_up(settings().memory_bytes, kPage);
  void* p = mmap(nullptr, size_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "gndet emulated CUDA device: cannot reserve %zu bytes of address space\n", size_);
    std::abort();
  }
  base_ = static_cast<char*>(p);
  void* s = mmap(nullptr, size_ / 8, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (s == MAP_FAILED) {
    std::fprintf(stderr, "gndet emulated CUDA device: cannot reserve its shadow memory\n");
    std::abort();
  }
  shadow_ = static_cast<uint8_t*>(s);  // all kUnmapped
  // The first pages stay unused, so that an access just below the first allocation still lands in
  // device memory (and is explained as such) rather than in whatever the host mapped below it.
  free_pages_[kLowGuard] = size_ - kLowGuard;
  if (settings().protect_keys) {
    // Denied for this thread from the start; other threads deny keys they never enabled, and
    // threads started later inherit their creator's rights.
    pkey_ = pkey_alloc(0, PKEY_DISABLE_ACCESS);
    if (pkey_ >= 0 && pkey_mprotect(base_, size_, PROT_NONE, pkey_) != 0) {
      pkey_free(pkey_);
      pkey_ = -1;
    }
  }
  struct sigaction sa {};
  sa.sa_sigaction = on_segv;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_previous_segv);
}

void DeviceMemory::allow_this_thread(bool allow) const {
  if (pkey_ >= 0) pkey_set(pkey_, allow ? 0 : PKEY_DISABLE_ACCESS);
}

void* DeviceMemory::allocate(size_t bytes) {
  const size_t mapped = round_up(std::max<size_t>(bytes, 1), kPage);
  const size_t need = mapped + kPage;  // + the guard page
  std::lock_guard<std::mutex> lock(mu_);
  for (auto it = free_pages_.begin(); it != free_pages_.end(); ++it) {
    if (it->second < need) continue;
    const size_t off = it->first;
    const size_t rest = it->second - need;
    free_pages_.erase(it);
    if (rest > 0) free_pages_[off + need] = rest;
    char* p = base_ + off;
    const int prot = PROT_READ | PROT_WRITE;
    const int rc = pkey_ >= 0 ? pkey_mprotect(p, mapped, prot, pkey_) : mprotect(p, mapped, prot);
    if (rc != 0) {
      free_pages_[off] = need;  // the kernel refused (out of memory): give the range back
      return nullptr;
    }
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    allocations_[a] = bytes;
    mapped_[a] = need;
    used_ += need;
    mark(a, bytes, true, 0);
#if defined(__SANITIZE_ADDRESS__)
    const uintptr_t tail = round_up(a + bytes, 8);  // the rest of the last page: not the allocation's
    ASAN_POISON_MEMORY_REGION(reinterpret_cast<void*>(tail), a + mapped - tail);
#endif
    return p;
  }
  return nullptr;
}

bool DeviceMemory::release(void* ptr) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = allocations_.find(a);
  if (it == allocations_.end()) return false;
  const size_t need = mapped_[a];
  madvise(ptr, need, MADV_DONTNEED);
  if (pkey_ >= 0) {
    pkey_mprotect(ptr, need, PROT_NONE, pkey_);
  } else {
    mprotect(ptr, need, PROT_NONE);
  }
  mark(a, need - kPage, false, kFreed);
  for (auto b = live_blocks_.lower_bound(a); b != live_blocks_.end() && b->first < a + need;) b = live_blocks_.erase(b);
  segments_.erase(a);
  allocations_.erase(it);
  mapped_.erase(a);
  used_ -= need;
  // Give the pages back and merge with free neighbours.
  size_t off = a - reinterpret_cast<uintptr_t>(base_), len = need;
  auto next = free_pages_.lower_bound(off);
  if (next != free_pages_.end() && next->first == off + len) {
    len += next->second;
    next = free_pages_.erase(next);
  }
  if (next != free_pages_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == off) {
      off = prev->first;
      len += prev->second;
      free_pages_.erase(prev);
    }
  }
  free_pages_[off] = len;
  return true;
}

size_t DeviceMemory::used() const {
  std::lock_guard<std::mutex> lock(mu_);
  return used_;
}

std::pair<uintptr_t, size_t> DeviceMemory::allocation_of(uintptr_t a) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = allocations_.upper_bound(a);
  if (it == allocations_.begin()) return {0, 0};
  --it;
  if (a < it->first + round_up(std::max<size_t>(it->second, 1), kPage)) return {it->first, it->second};
  return {0, 0};
}

void DeviceMemory::mark(uintptr_t a, size_t n, bool live, uint8_t reason) {
  // a is 8-aligned for every caller (allocations are page-aligned, blocks 512-aligned).
  uint8_t* sh = shadow_ + ((a - reinterpret_cast<uintptr_t>(base_)) >> 3);
  const size_t full = n / 8;
  std::memset(sh, live ? 8 : reason, full);
  if (n % 8 != 0) sh[full] = live ? static_cast<uint8_t>(n % 8) : reason;
#if defined(__SANITIZE_ADDRESS__)
  // Under AddressSanitizer the kernels have no access hooks: ASan's own shadow, kept alike, stands
  // in for memcheck (with its reports).
  if (live) {
    ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<void*>(a), n);
  } else {
    ASAN_POISON_MEMORY_REGION(reinterpret_cast<void*>(a), n);
  }
#endif
}

bool DeviceMemory::addressable_slow(uintptr_t a, size_t n) const {
  if (n == 0) return true;
  if (!contains(a) || !contains(a + n - 1)) return false;
  const uintptr_t b = reinterpret_cast<uintptr_t>(base_);
  for (uintptr_t g = (a - b) >> 3, last = (a + n - 1 - b) >> 3; g <= last; ++g) {
    const uint8_t s = shadow_[g];
    if (s == 8) continue;
    if (s >= 8 || s == 0) return false;
    const uintptr_t end_in_granule = std::min<uintptr_t>(a + n, b + (g + 1) * 8) - (b + g * 8);
    if (end_in_granule > s) return false;
  }
  return true;
}

void DeviceMemory::note_segment(uintptr_t a, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  if (kTraceBlocks) std::fprintf(stderr, "segment %lx %zu\n", (unsigned long)a, n);
  segments_[a] = Segment{n, 0};
  mark(a, n, false, kCached);
}

DeviceMemory::Segment* DeviceMemory::segment_of(uintptr_t a) {
  auto it = segments_.upper_bound(a);
  if (it == segments_.begin()) return nullptr;
  --it;
  return a < it->first + it->second.bytes ? &it->second : nullptr;
}

bool DeviceMemory::block_event(uintptr_t a, size_t n, bool live, bool queue_if_pending) {
  std::lock_guard<std::mutex> lock(mu_);
  Segment* seg = segment_of(a);
  if (queue_if_pending && seg != nullptr && seg->queued > 0) {
    ++seg->queued;
    return false;
  }
  apply_block_event(a, n, live);
  return true;
}

void DeviceMemory::queue_block_event(uintptr_t a) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Segment* seg = segment_of(a)) ++seg->queued;
}

void DeviceMemory::run_queued_block_event(uintptr_t a, size_t n, bool live) {
  std::lock_guard<std::mutex> lock(mu_);
  if (Segment* seg = segment_of(a)) --seg->queued;
  apply_block_event(a, n, live);
}

void DeviceMemory::apply_block_event(uintptr_t a, size_t n, bool live) {
  if (kTraceBlocks) std::fprintf(stderr, "%s %lx %zu\n", live ? "live" : "dead", (unsigned long)a, n);
  if (live) {
    live_blocks_[a] = n;
    mark(a, round_up(n, 4), true, 0);
  } else {
    live_blocks_.erase(a);
    mark(a, n, false, kCached);
  }
}

std::string DeviceMemory::explain(uintptr_t a, size_t n) const {
  if (!contains(a)) return hex(a) + " is not device memory";
  std::lock_guard<std::mutex> lock(mu_);
  const uint8_t s = shadow_[(a - reinterpret_cast<uintptr_t>(base_)) >> 3];
  // The nearest live tensor block at or before a, and the next one after it.
  std::string before;
  auto b = live_blocks_.upper_bound(a);
  const auto next = b;
  if (b != live_blocks_.begin()) {
    --b;
    const uintptr_t end = b->first + b->second;
    const std::string block = std::to_string(b->second) + "-byte tensor block at " + hex(b->first);
    if (a < end) return "the access of " + std::to_string(n) + " bytes runs past the end of a " + block;
    if (a < b->first + round_up(b->second, 512)) {
      return std::to_string(a - end) + " bytes past the end of a " + block + " (caching allocator)";
    }
    if (a - end < (size_t{1} << 20)) before = std::to_string(a - end) + " bytes past the end of the " + block;
  }
  if (s == kCached) {
    return "in no live tensor block of a caching-allocator segment (freed, or never handed out)" +
           (before.empty() ? std::string() : "; " + before);
  }
  if (next != live_blocks_.end() && next->first - a <= 4096) {
    return std::to_string(next->first - a) + " bytes before the start of a " + std::to_string(next->second) +
           "-byte tensor block at " + hex(next->first) + " (caching allocator)";
  }
  auto al = allocations_.upper_bound(a);
  if (al != allocations_.begin()) {
    --al;
    const uintptr_t end = al->first + al->second;
    if (a >= end && a - end < (size_t{1} << 20) && !segments_.count(al->first)) {
      return std::to_string(a - end) + " bytes past the end of a " + std::to_string(al->second) +
             "-byte cudaMalloc allocation at " + hex(al->first);
    }
  }
  if (s == kFreed) return "in memory released by cudaFree";
  return "outside every device allocation";
}

// ---- pinned host memory ----

bool is_pinned(const void* ptr) {
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  std::lock_guard<std::mutex> lock(g_pinned_mu);
  auto it = g_pinned.upper_bound(a);
  if (it == g_pinned.begin()) return false;
  --it;
  return a < it->first + it->second;
}

void* pinned_allocate(size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, kPage, round_up(std::max<size_t>(bytes, 1), kPage)) != 0) return nullptr;
  std::lock_guard<std::mutex> lock(g_pinned_mu);
  g_pinned[reinterpret_cast<uintptr_t>(p)] = bytes;
  return p;
}

bool pinned_release(void* ptr) {
  {
    std::lock_guard<std::mutex> lock(g_pinned_mu);
    if (g_pinned.erase(reinterpret_cast<uintptr_t>(ptr)) == 0) return false;
  }
  std::free(ptr);
  return true;
}

// ---- emulator.h ----

void note_segment(void* ptr, size_t bytes) {
  DeviceMemory::get().note_segment(reinterpret_cast<uintptr_t>(ptr), bytes);
}

// A segment's blocks all belong to the stream the segment was made for, and the caching allocator
// reuses them in that stream's order: so the shadow of a segment changes in that stream's order
// too. A change is queued behind the work issued before it; a block becomes addressable at once
// when nothing is queued for its segment (a kernel on another stream may use a fresh block before
// its stream gets anywhere, which is legitimate).
void note_block_live(void* ptr, size_t requested, cudaStream_t stream) {
  DeviceMemory& mem = DeviceMemory::get();
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  const StreamPtr s = stream_for_handle(stream);
  if (mem.block_event(a, requested, true, s != nullptr && sticky_error() == cudaSuccess)) return;
  enqueue(s, "mark a reused block live", [a, requested] { DeviceMemory::get().run_queued_block_event(a, requested, true); });
}

void note_block_free(void* ptr, size_t bytes, cudaStream_t stream) {
  // The work queued before the free may still use the block: it stays addressable until then.
  DeviceMemory& mem = DeviceMemory::get();
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  const StreamPtr s = stream_for_handle(stream);
  if (s == nullptr || sticky_error() != cudaSuccess) {
    mem.block_event(a, bytes, false, false);
    return;
  }
  mem.queue_block_event(a);
  enqueue(s, "poison a freed block", [a, bytes] { DeviceMemory::get().run_queued_block_event(a, bytes, false); });
}

bool is_device_pointer(const void* ptr) { return DeviceMemory::get().contains(reinterpret_cast<uintptr_t>(ptr)); }

void check_device_range(const void* ptr, size_t bytes, const char* what) {
  if (bytes == 0) return;
  DeviceMemory& mem = DeviceMemory::get();
  const uintptr_t a = reinterpret_cast<uintptr_t>(ptr);
  if (mem.contains(a) && mem.addressable(a, bytes)) return;
  throw DeviceFault{cudaErrorIllegalAddress, std::string("memcheck: ") + what + ": " + std::to_string(bytes) +
                                                 " bytes at " + hex(a) + ": " + mem.explain(a, bytes)};
}

void allow_device_access_on_this_thread() { DeviceMemory::get().allow_this_thread(true); }

}  // namespace gndet::cuda::emu
