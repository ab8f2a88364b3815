// The device side of the emulated CUDA runtime, called from kernel code: threadIdx & co., block
// barriers, warp collectives, __nanosleep, atomics. Each runs with the calling thread's access
// checks paused (its own code is not the kernel's) and switches fibers only where a GPU thread
// could wait. synccheck's rules for barriers and collectives live here; the scheduler that runs
// the fibers is launch.cpp.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "tensor/cuda/emulator/scheduler.h"

namespace gndet::cuda::emu {

const char* op_name(WarpOp op, bool syncwarp) {
  if (syncwarp) return "__syncwarp";
  switch (op) {
    case WarpOp::Shfl: return "__shfl_sync";
    case WarpOp::ShflXor: return "__shfl_xor_sync";
    case WarpOp::ShflDown: return "__shfl_down_sync";
    case WarpOp::ShflUp: return "__shfl_up_sync";
    case WarpOp::All: return "__all_sync";
    case WarpOp::Any: return "__any_sync";
    case WarpOp::Ballot: return "__ballot_sync";
  }
  return "?";
}

namespace {

// The warp-op result for lane `i` of a completed collective.
uint64_t collective_result(const std::vector<EmuThread>& threads, int warp_base, int lanes, const EmuThread& t,
                           std::string* error) {
  const int i = t.lane;
  const int width = t.width;
  const int seg = i & ~(width - 1);
  int src = i;
  switch (t.op) {
    case WarpOp::Shfl: src = seg + ((t.arg % width) + width) % width; break;
    case WarpOp::ShflXor: {
      const int j = i ^ t.arg;
      src = j >= seg && j < seg + width ? j : i;
      break;
    }
    case WarpOp::ShflDown: src = (i - seg) + t.arg < width ? i + t.arg : i; break;
    case WarpOp::ShflUp: src = (i - seg) >= t.arg ? i - t.arg : i; break;
    case WarpOp::All:
    case WarpOp::Any:
    case WarpOp::Ballot: {
      uint64_t ballot = 0;
      for (int l = 0; l < lanes; ++l) {
        if ((t.mask >> l) & 1u) ballot |= threads[warp_base + l].value != 0 ? (uint64_t{1} << l) : 0;
      }
      if (t.op == WarpOp::Ballot) return ballot;
      if (t.op == WarpOp::All) return ballot == (t.mask & (lanes == 32 ? 0xffffffffu : (1u << lanes) - 1)) ? 1 : 0;
      return ballot != 0 ? 1 : 0;
    }
  }
  if (((t.mask >> src) & 1u) == 0) {
    *error = "lane " + std::to_string(i) + " reads lane " + std::to_string(src) + ", which is not in the mask 0x" +
             [&] {
               char buf[16];
               std::snprintf(buf, sizeof(buf), "%08x", t.mask);
               return std::string(buf);
             }();
    return t.value;
  }
  return threads[warp_base + src].value;
}


// The calling lane arrives at a warp collective (or __syncwarp); returns its result once every
// lane of the mask has arrived.
uint64_t arrive_at_warp(EmuThread& t, WarpOp op, bool syncwarp, unsigned mask, uint64_t value, int arg, int width,
                        const char* file, int line) {
  Block& b = *t.block;
  std::vector<EmuThread>& threads = tl_worker->threads;
  const int base = t.warp * 32;
  const int lanes = std::min(32, b.threads - base);
  auto fail = [&](const std::string& why) {
    raise_fault(&t, cudaErrorLaunchFailure,
                std::string("synccheck: ") + op_name(op, syncwarp) + " at " + file + ":" + std::to_string(line) + ": " + why,
                nullptr);
  };
  if (((mask >> t.lane) & 1u) == 0) fail("the calling lane " + std::to_string(t.lane) + " is not in its mask");
  if (lanes < 32 && (mask >> lanes) != 0) {
    fail("the mask names lanes " + std::to_string(lanes) + "-31, which this warp of a " + std::to_string(b.threads) +
         "-thread block does not have");
  }
  if (width < 1 || width > 32 || (width & (width - 1)) != 0) fail("width " + std::to_string(width) + " is not a power of 2 up to 32");
  t.op = op;
  t.syncwarp = syncwarp;
  t.mask = mask;
  t.value = value;
  t.arg = arg;
  t.width = width;
  t.file = file;
  t.line = line;
  set_state(t, EmuThread::State::AtWarp);
  bool complete = true;
  for (int l = 0; l < lanes; ++l) {
    if (((mask >> l) & 1u) == 0) continue;
    const EmuThread& o = threads[base + l];
    if (o.state == EmuThread::State::Done) fail("lane " + std::to_string(l) + " of its mask has exited");
    if (o.state != EmuThread::State::AtWarp) {
      complete = false;
      continue;
    }
    if (o.op != op || o.syncwarp != syncwarp || o.mask != mask || o.width != width || o.line != line || o.file != file) {
      fail(std::string("lane ") + std::to_string(l) + " is at another collective, " + op_name(o.op, o.syncwarp) + " at " +
           o.file + ":" + std::to_string(o.line) + " with mask 0x" + std::to_string(o.mask) +
           ": the lanes of a mask must all reach the same one");
    }
  }
  if (complete) {
    std::string error;
    for (int l = 0; l < lanes; ++l) {
      if ((mask >> l) & 1u) threads[base + l].result = collective_result(threads, base, lanes, threads[base + l], &error);
    }
    if (!error.empty()) fail(error);
    if (syncwarp) ++b.warp_epoch[t.warp];
    for (int l = 0; l < lanes; ++l) {
      if ((mask >> l) & 1u) set_state(threads[base + l], EmuThread::State::Runnable);
    }
    return t.result;
  }
  yield(t);
  return t.result;
}

}  // namespace

// ---- builtins ----

uint3 thread_idx() { return require_thread("threadIdx")->tid; }
uint3 block_idx() { return require_thread("blockIdx")->block->idx; }
dim3 block_dim() { return require_thread("blockDim")->block->dim; }
dim3 grid_dim() { return require_thread("gridDim")->block->grid->config.grid; }
void* dynamic_shared() {
  EmuThread* t = require_thread("extern __shared__");
  return t->block->dynamic_shared;
}

void syncthreads(const char* file, int line) {
  EmuThread& t = *require_thread("__syncthreads");
  const Pause pause;
  Block& b = *t.block;
  auto fail = [&](const std::string& why) {
    raise_fault(&t, cudaErrorLaunchFailure, "synccheck: __syncthreads at " + std::string(file) + ":" + std::to_string(line) + ": " + why, nullptr);
  };
  if (b.exited > 0) {
    fail(std::to_string(b.exited) + " threads of the block have exited before it: a barrier every thread of the "
         "block must reach");
  }
  if (b.at_barrier > 0 && (b.barrier_line != line || std::strcmp(b.barrier_file, file) != 0)) {
    fail("other threads of the block wait at the __syncthreads at " + std::string(b.barrier_file) + ":" +
         std::to_string(b.barrier_line) + ": divergent barriers");
  }
  if (b.at_barrier == 0) {
    b.barrier_file = file;
    b.barrier_line = line;
  }
  t.file = file;
  t.line = line;
  set_state(t, EmuThread::State::AtBarrier);
  if (++b.at_barrier == b.live) {
    // The last arrival releases the barrier; shared-memory accesses after it are a new epoch.
    b.at_barrier = 0;
    ++b.barrier_count;
    std::vector<EmuThread>& threads = tl_worker->threads;
    for (int i = 0; i < b.threads; ++i) {
      if (threads[i].state == EmuThread::State::AtBarrier) set_state(threads[i], EmuThread::State::Runnable);
    }
    return;
  }
  yield(t);
}

void syncwarp(unsigned mask, const char* file, int line) {
  EmuThread& t = *require_thread("__syncwarp");
  const Pause pause;
  arrive_at_warp(t, WarpOp::All, true, mask, 1, 0, 32, file, line);
}

uint64_t warp_collective(WarpOp op, unsigned mask, uint64_t bits, int arg, int width, const char* file, int line) {
  EmuThread& t = *require_thread("a warp collective");
  const Pause pause;
  return arrive_at_warp(t, op, false, mask, bits, arg, width, file, line);
}

void threadfence() { std::atomic_thread_fence(std::memory_order_seq_cst); }

void nanosleep(unsigned ns) {
  EmuThread& t = *require_thread("__nanosleep");
  const Pause pause;
  Block& b = *t.block;
  if (b.grid->faulted.load()) {
    // Another block of the grid faulted: whatever this one waits for may never come.
    b.aborted = true;
    set_state(t, EmuThread::State::Faulted);
    yield(t);
    std::abort();
  }
  // Waiting counts from the first __nanosleep since the block last got anywhere (a barrier
  // released, a thread finished).
  const double now = seconds_now();
  const uint64_t progress = (uint64_t{b.barrier_count} << 32) + static_cast<uint64_t>(b.exited);
  if (b.spin_since < 0 || b.spin_progress != progress) {
    b.spin_since = now;
    b.spin_progress = progress;
  }
  if (now - b.spin_since > settings().hang_seconds) {
    raise_fault(&t, cudaErrorLaunchTimeout,
                "hang: " + thread_name(t) + " has waited in __nanosleep for " +
                    std::to_string(static_cast<int>(settings().hang_seconds)) +
                    " s (GNDET_EMU_HANG_SECONDS): what it waits for never happens",
                __builtin_return_address(0));
  }
  // Hand the turn to another resident block, then let the other threads of this one run.
  release_token();
  std::this_thread::sleep_for(std::chrono::nanoseconds(std::max(ns, 1000u)));
  acquire_token();
  yield(t);
}

// ---- atomics ----

void check_atomic(EmuThread* t, const void* p, size_t n, const char* what, const void* pc);

template <class T, class F>
T read_modify_write(T* p, F f, const char* what, const void* pc) {
  const Pause pause;
  if (EmuThread* t = tl_current) check_atomic(t, p, sizeof(T), what, pc);
  std::atomic_ref<T> ref(*p);
  T old = ref.load();
  while (!ref.compare_exchange_weak(old, f(old))) {
  }
  return old;
}

#define GNDET_EMU_RMW(fn, cuda_name, expr)                                                              \
  template <class T>                                                                                    \
  T fn(T* p, T v) {                                                                                     \
    return read_modify_write(p, [v](T old) { return static_cast<T>(expr); }, cuda_name, __builtin_return_address(0)); \
  }
GNDET_EMU_RMW(atomic_add, "atomicAdd", old + v)
GNDET_EMU_RMW(atomic_sub, "atomicSub", old - v)
GNDET_EMU_RMW(atomic_exch, "atomicExch", (static_cast<void>(old), v))
GNDET_EMU_RMW(atomic_min, "atomicMin", v < old ? v : old)
GNDET_EMU_RMW(atomic_max, "atomicMax", v > old ? v : old)
GNDET_EMU_RMW(atomic_and, "atomicAnd", old & v)
GNDET_EMU_RMW(atomic_or, "atomicOr", old | v)
GNDET_EMU_RMW(atomic_xor, "atomicXor", old ^ v)
#undef GNDET_EMU_RMW

template <class T>
T atomic_cas(T* p, T compare, T v) {
  const Pause pause;
  if (EmuThread* t = tl_current) check_atomic(t, p, sizeof(T), "atomicCAS", __builtin_return_address(0));
  std::atomic_ref<T> ref(*p);
  T expected = compare;
  ref.compare_exchange_strong(expected, v);
  return expected;
}

template float atomic_add(float*, float);
template double atomic_add(double*, double);
template int atomic_add(int*, int);
template unsigned atomic_add(unsigned*, unsigned);
template unsigned long long atomic_add(unsigned long long*, unsigned long long);
template int atomic_sub(int*, int);
template unsigned atomic_sub(unsigned*, unsigned);
template int atomic_exch(int*, int);
template unsigned atomic_exch(unsigned*, unsigned);
template unsigned long long atomic_exch(unsigned long long*, unsigned long long);
template float atomic_exch(float*, float);
template int atomic_min(int*, int);
template unsigned atomic_min(unsigned*, unsigned);
template long long atomic_min(long long*, long long);
template unsigned long long atomic_min(unsigned long long*, unsigned long long);
template int atomic_max(int*, int);
template unsigned atomic_max(unsigned*, unsigned);
template long long atomic_max(long long*, long long);
template unsigned long long atomic_max(unsigned long long*, unsigned long long);
template int atomic_and(int*, int);
template unsigned atomic_and(unsigned*, unsigned);
template unsigned long long atomic_and(unsigned long long*, unsigned long long);
template int atomic_or(int*, int);
template unsigned atomic_or(unsigned*, unsigned);
template unsigned long long atomic_or(unsigned long long*, unsigned long long);
template int atomic_xor(int*, int);
template unsigned atomic_xor(unsigned*, unsigned);
template unsigned long long atomic_xor(unsigned long long*, unsigned long long);
template int atomic_cas(int*, int, int);
template unsigned atomic_cas(unsigned*, unsigned, unsigned);
template unsigned long long atomic_cas(unsigned long long*, unsigned long long, unsigned long long);

}  // namespace gndet::cuda::emu
