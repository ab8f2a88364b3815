// memcheck and racecheck of the emulated device.
//
// The kernel sources are compiled with GCC's ThreadSanitizer instrumentation (-fsanitize=thread,
// no function entry/exit hooks), which calls __tsan_read4(addr), __tsan_write8(addr), ... before
// every load and store the optimised code makes. No TSan runtime is linked: this file is that
// runtime, as the Linux kernel's KCSAN provides its own. Outside kernel code (host code of the
// same files, or a kernel thread inside the emulator) a hook returns after one thread-local load.
//
// Inside a kernel an access must be to
//   - the thread's own stack (locals and parameters): not checked further;
//   - device memory that is addressable (DeviceMemory's shadow: a live tensor block, or a plain
//     cudaMalloc allocation), else memcheck stops the kernel;
//   - the block's shared memory (its static __shared__ variables, or the dynamic buffer within
//     the bytes the launch asked for), where racecheck records who touched each 4-byte word since
//     the last __syncthreads: two threads, at least one writing, with neither a block barrier nor
//     (same warp) a __syncwarp between them, is a hazard that stops the kernel;
//   - pinned host memory (cudaHostAlloc), which a GPU reads over the bus;
// anything else is host memory, which a kernel cannot reach on a GPU: a fault.
#include <cinttypes>
#include <cstdio>

#include "tensor/cuda/emulator/scheduler.h"

namespace gndet::cuda::emu {
namespace {

std::atomic<bool> g_hooks_seen{false};

std::string hex(uintptr_t a) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "0x%" PRIxPTR, a);
  return buf;
}

const char* verb(bool write) { return write ? "write" : "read"; }

SharedRange* shared_range_of(uintptr_t a) {
  Worker* w = tl_worker;
  if (w == nullptr) return nullptr;
  for (SharedRange& r : w->shared) {
    if (a >= r.lo && a < r.hi) return &r;
  }
  return nullptr;
}

std::string thread_of(const Block& b, int linear) {
  if (linear < 0) return "other threads";
  const dim3 d = b.dim;
  const unsigned l = static_cast<unsigned>(linear);
  return "thread (" + std::to_string(l % d.x) + "," + std::to_string(l / d.x % d.y) + "," +
         std::to_string(l / (d.x * d.y)) + ")";
}

// Two accesses, by `earlier` (with its warp epoch then) and by t now, are ordered when they are
// the same thread, or the same warp with a __syncwarp in between.
bool ordered(const EmuThread& t, int earlier, uint32_t earlier_warp_epoch) {
  if (earlier == t.linear) return true;
  return earlier / 32 == t.warp && earlier_warp_epoch < t.block->warp_epoch[t.warp];
}

void race(EmuThread* t, SharedRange& r, uintptr_t a, size_t n, bool write, const char* hazard, int other,
          bool other_wrote, const void* other_pc, const void* pc) {
  const Block& b = *t->block;
  std::string what = std::string("racecheck: ") + hazard + " hazard on " + std::to_string(n) + " bytes of " +
                     (r.dynamic ? "dynamic" : "static") + " shared memory at " + hex(a) + " (offset " +
                     std::to_string(a - r.lo) + "): " + thread_name(*t) + " " + (write ? "writes" : "reads") +
                     " what " + thread_of(b, other) + " " + (other_wrote ? "wrote" : "read") +
                     " with no __syncthreads in between";
  if (other_pc != nullptr) what += "\n  the other access: " + source_location(other_pc);
  raise_fault(t, cudaErrorLaunchFailure, what, pc);
}

void racecheck(EmuThread* t, SharedRange& r, uintptr_t a, size_t n, bool write, const void* pc) {
  const Block& b = *t->block;
  const uint64_t epoch = b.race_epoch();
  const uint32_t wepoch = b.warp_epoch[t->warp];
  for (uintptr_t word = (a - r.lo) / 4, last = (a + n - 1 - r.lo) / 4; word <= last; ++word) {
    RaceCell& c = r.cells[word];
    if (c.epoch != epoch) c = RaceCell{epoch};
    if (c.writer >= 0 && !ordered(*t, c.writer, c.writer_warp_epoch)) {
      race(t, r, a, n, write, write ? "write-after-write" : "read-after-write", c.writer, true, c.writer_pc, pc);
    }
    if (write) {
      if (c.reader >= 0 && !ordered(*t, c.reader, c.reader_warp_epoch)) {
        race(t, r, a, n, write, "write-after-read", c.reader, false, c.reader_pc, pc);
      }
      if (c.reader == RaceCell::kManyReaders &&
          (c.reader_warp != t->warp || c.reader_warp_epoch >= b.warp_epoch[t->warp])) {
        // Several threads read it: at least one of them is not this thread, and not ordered.
        race(t, r, a, n, write, "write-after-read", -1, false, c.reader_pc, pc);
      }
      c.writer = t->linear;
      c.writer_warp_epoch = wepoch;
      c.writer_pc = pc;
      c.reader = -1;
      c.reader_warp = -1;
    } else if (c.reader == -1 || c.reader == t->linear) {
      c.reader = t->linear;
      c.reader_warp = t->warp;
      c.reader_warp_epoch = wepoch;
      c.reader_pc = pc;
    } else {
      if (c.reader_warp != t->warp) c.reader_warp = RaceCell::kManyReaders;
      c.reader = RaceCell::kManyReaders;
      c.reader_warp_epoch = std::max(c.reader_warp_epoch, wepoch);
    }
  }
}

void check_access(EmuThread* t, uintptr_t a, size_t n, bool write, const void* pc) {
  DeviceMemory& mem = DeviceMemory::get();
  const Settings& s = settings();
  if (mem.contains(a)) {
    if (s.memcheck && !mem.addressable(a, n)) {
      raise_fault(t, cudaErrorIllegalAddress,
                  std::string("memcheck: invalid ") + verb(write) + " of " + std::to_string(n) + " bytes at " + hex(a) +
                      ": " + mem.explain(a, n),
                  pc);
    }
    return;
  }
  if (SharedRange* r = shared_range_of(a)) {
    if (a + n > r->hi) {
      raise_fault(t, cudaErrorIllegalAddress,
                  std::string("memcheck: invalid ") + verb(write) + " of " + std::to_string(n) + " bytes at " + hex(a) +
                      ": past the end of the block's " + std::to_string(r->hi - r->lo) + " bytes of " +
                      (r->dynamic ? "dynamic" : "static") + " shared memory",
                  pc);
    }
    if (s.racecheck) racecheck(t, *r, a, n, write, pc);
    return;
  }
  if (is_pinned(reinterpret_cast<const void*>(a))) return;
  if (s.memcheck) {
    raise_fault(t, cudaErrorIllegalAddress,
                std::string("memcheck: invalid ") + verb(write) + " of " + std::to_string(n) + " bytes at " + hex(a) +
                    ": host memory (not device memory, not this block's shared memory, not the thread's stack), which "
                    "a kernel cannot reach",
                pc);
  }
}

// Checking is off while it runs: its own code (strings, maps) may call inline library functions
// that the dynamic linker resolved to an instrumented copy in a kernel file, whose hooks would
// otherwise come back here.
[[gnu::noinline]] void check_slow(EmuThread* t, uintptr_t a, size_t n, bool write, const void* pc) {
  t->checking = false;
  check_access(t, a, n, write, pc);
  t->checking = true;
}

inline void check(const void* p, size_t n, bool write, const void* pc) {
  EmuThread* t = tl_current;
  if (t == nullptr || !t->checking) [[likely]] return;
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a - t->stack_lo < t->stack_size) return;
  check_slow(t, a, n, write, pc);
}

}  // namespace

bool access_hooks_built() { return g_hooks_seen.load(std::memory_order_relaxed); }

void check_atomic(EmuThread* t, const void* p, size_t n, const char* what, const void* pc) {
  // Atomics do not race with each other: device memory is checked, shared memory bounded.
  const uintptr_t a = reinterpret_cast<uintptr_t>(p);
  DeviceMemory& mem = DeviceMemory::get();
  if (mem.contains(a)) {
    if (settings().memcheck && !mem.addressable(a, n)) {
      raise_fault(t, cudaErrorIllegalAddress,
                  std::string("memcheck: invalid ") + what + " on " + std::to_string(n) + " bytes at " + hex(a) + ": " +
                      mem.explain(a, n),
                  pc);
    }
    return;
  }
  if (SharedRange* r = shared_range_of(a); r != nullptr && a + n <= r->hi) return;
  if (settings().memcheck && access_hooks_built()) {
    raise_fault(t, cudaErrorIllegalAddress,
                std::string("memcheck: ") + what + " on " + hex(a) + ", which is neither device nor shared memory", pc);
  }
}

}  // namespace gndet::cuda::emu

// ---- the hooks GCC's -fsanitize=thread instrumentation calls ----

using gndet::cuda::emu::check;

extern "C" {

// Called by the constructor of every instrumented object file.
void __tsan_init() { gndet::cuda::emu::g_hooks_seen.store(true); }
void __tsan_func_entry(void*) {}
void __tsan_func_exit() {}
void __tsan_vptr_update(void**, void*) {}
void __tsan_vptr_read(void**) {}

#define GNDET_TSAN_ACCESS(n)                                                                                  \
  void __tsan_read##n(void* p) { check(p, n, false, __builtin_return_address(0)); }                          \
  void __tsan_write##n(void* p) { check(p, n, true, __builtin_return_address(0)); }                          \
  void __tsan_unaligned_read##n(void* p) { check(p, n, false, __builtin_return_address(0)); }                \
  void __tsan_unaligned_write##n(void* p) { check(p, n, true, __builtin_return_address(0)); }                \
  void __tsan_volatile_read##n(void* p) { check(p, n, false, __builtin_return_address(0)); }                 \
  void __tsan_volatile_write##n(void* p) { check(p, n, true, __builtin_return_address(0)); }                 \
  void __tsan_unaligned_volatile_read##n(void* p) { check(p, n, false, __builtin_return_address(0)); }       \
  void __tsan_unaligned_volatile_write##n(void* p) { check(p, n, true, __builtin_return_address(0)); }
GNDET_TSAN_ACCESS(1)
GNDET_TSAN_ACCESS(2)
GNDET_TSAN_ACCESS(4)
GNDET_TSAN_ACCESS(8)
GNDET_TSAN_ACCESS(16)
#undef GNDET_TSAN_ACCESS

void __tsan_read_range(void* p, unsigned long n) { check(p, n, false, __builtin_return_address(0)); }
void __tsan_write_range(void* p, unsigned long n) { check(p, n, true, __builtin_return_address(0)); }

// Atomic operations of instrumented code (std::atomic and __atomic builtins in host code of the
// kernel files, e.g. shared_ptr's counts): performed as asked, and checked inside kernels.
#define GNDET_TSAN_ATOMIC(bits, T)                                                                              \
  T __tsan_atomic##bits##_load(const volatile T* a, int mo) {                                                   \
    check(const_cast<T*>(a), sizeof(T), false, __builtin_return_address(0));                                    \
    return __atomic_load_n(a, mo);                                                                              \
  }                                                                                                             \
  void __tsan_atomic##bits##_store(volatile T* a, T v, int mo) {                                                \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    __atomic_store_n(a, v, mo);                                                                                 \
  }                                                                                                             \
  T __tsan_atomic##bits##_exchange(volatile T* a, T v, int mo) {                                                \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    return __atomic_exchange_n(a, v, mo);                                                                       \
  }                                                                                                             \
  T __tsan_atomic##bits##_fetch_add(volatile T* a, T v, int mo) {                                               \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    return __atomic_fetch_add(a, v, mo);                                                                        \
  }                                                                                                             \
  T __tsan_atomic##bits##_fetch_sub(volatile T* a, T v, int mo) {                                               \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    return __atomic_fetch_sub(a, v, mo);                                                                        \
  }                                                                                                             \
  T __tsan_atomic##bits##_fetch_and(volatile T* a, T v, int mo) {                                               \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    return __atomic_fetch_and(a, v, mo);                                                                        \
  }                                                                                                             \
  T __tsan_atomic##bits##_fetch_or(volatile T* a, T v, int mo) {                                                \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    return __atomic_fetch_or(a, v, mo);                                                                         \
  }                                                                                                             \
  T __tsan_atomic##bits##_fetch_xor(volatile T* a, T v, int mo) {                                               \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    return __atomic_fetch_xor(a, v, mo);                                                                        \
  }                                                                                                             \
  T __tsan_atomic##bits##_fetch_nand(volatile T* a, T v, int mo) {                                              \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    return __atomic_fetch_nand(a, v, mo);                                                                       \
  }                                                                                                             \
  int __tsan_atomic##bits##_compare_exchange_strong(volatile T* a, T* c, T v, int mo, int fmo) {                \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    return __atomic_compare_exchange_n(a, c, v, false, mo, fmo);                                                \
  }                                                                                                             \
  int __tsan_atomic##bits##_compare_exchange_weak(volatile T* a, T* c, T v, int mo, int fmo) {                  \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    return __atomic_compare_exchange_n(a, c, v, true, mo, fmo);                                                 \
  }                                                                                                             \
  T __tsan_atomic##bits##_compare_exchange_val(volatile T* a, T c, T v, int mo, int fmo) {                      \
    check(const_cast<T*>(a), sizeof(T), true, __builtin_return_address(0));                                     \
    __atomic_compare_exchange_n(a, &c, v, false, mo, fmo);                                                      \
    return c;                                                                                                   \
  }
GNDET_TSAN_ATOMIC(8, uint8_t)
GNDET_TSAN_ATOMIC(16, uint16_t)
GNDET_TSAN_ATOMIC(32, uint32_t)
GNDET_TSAN_ATOMIC(64, uint64_t)
#undef GNDET_TSAN_ATOMIC

void __tsan_atomic_thread_fence(int mo) { __atomic_thread_fence(mo); }
void __tsan_atomic_signal_fence(int mo) { __atomic_signal_fence(mo); }

}  // extern "C"
