// Kernels on the emulated device: a grid's blocks are handed to worker threads, each block's
// threads run as fibers (Boost.Context) on its worker, switching only at block barriers, warp
// collectives and __nanosleep. Warps of 32 meet at every collective.
//
// Residency: the device reports `sms` multiprocessors that each hold `resident_per_sm` blocks,
// and there is one worker per resident block, so every block a grid sized by the occupancy API
// counts on runs at the same time (gndet's fused GroupNorm has blocks that wait for other
// blocks). At most `running` of them compute at once: a block that spins in __nanosleep hands its
// turn to another.
//
// Schedules (GNDET_EMU_SCHEDULE): each hides different missing barriers, so more than one is
// offered. warp-greedy runs the lowest warp until it waits at a block barrier (or ends) before
// the next warp starts: a warp that reads shared memory others have not written yet reads stale
// values. reverse does the same from the highest warp. random picks any runnable thread.
//
// synccheck: a __syncthreads that not every thread of the block reaches (threads at different
// barriers, or threads that have exited while others wait) is a fault, as are warp collectives
// whose lanes disagree or have exited, and a block whose threads all wait with no way on.
#include <dlfcn.h>
#include <link.h>
#include <sys/mman.h>

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cxxabi.h>
#include <fstream>
#include <sstream>

#include "gndet_config.h"

#include "tensor/cuda/emulator/scheduler.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <sanitizer/lsan_interface.h>
#endif

namespace gndet::cuda::emu {

thread_local EmuThread* tl_current = nullptr;
thread_local Worker* tl_worker = nullptr;

EmuThread* current_thread() { return tl_current; }

namespace {

constexpr size_t kStackBytes = size_t{64} << 10;  // the kernels use < 1 KiB; the checks a few KiB
constexpr uint64_t kStackCanary = 0x6e646574436e6172ull;
constexpr int kMaxThreads = 1024;

// AddressSanitizer must be told about every switch between stacks (and forget a reused fiber
// stack's old redzones), or it reports the fibers' frames as overflows.
#if defined(__SANITIZE_ADDRESS__)
struct AsanStacks {
  const void* scheduler_bottom = nullptr;
  size_t scheduler_size = 0;
};
thread_local AsanStacks tl_asan;
void to_fiber(void** save, const EmuThread& t) {
  __sanitizer_start_switch_fiber(save, reinterpret_cast<const void*>(t.stack_lo), t.stack_size);
}
void to_scheduler(void** save) { __sanitizer_start_switch_fiber(save, tl_asan.scheduler_bottom, tl_asan.scheduler_size); }
void arrived(void* save) { __sanitizer_finish_switch_fiber(save, nullptr, nullptr); }
void first_arrival() { __sanitizer_finish_switch_fiber(nullptr, &tl_asan.scheduler_bottom, &tl_asan.scheduler_size); }
void reset_stack(const EmuThread& t) { ASAN_UNPOISON_MEMORY_REGION(reinterpret_cast<void*>(t.stack_lo), t.stack_size); }
// A faulting thread's fiber is abandoned with its frames: what they point to stays reachable
// (LeakSanitizer scans the stacks), as the device is unusable after a fault anyway.
void register_stacks(void* p, size_t n) { __lsan_register_root_region(p, n); }
#else
void register_stacks(void*, size_t) {}
void to_fiber(void**, const EmuThread&) {}
void to_scheduler(void**) {}
void arrived(void*) {}
void first_arrival() {}
void reset_stack(const EmuThread&) {}
#endif

std::mutex g_tokens_mu;
std::condition_variable g_tokens_cv;
int g_tokens = -1;

}  // namespace

// ---- shared with device_builtins.cpp (scheduler.h) ----

double seconds_now() {
  using namespace std::chrono;
  return duration<double>(steady_clock::now().time_since_epoch()).count();
}

std::string dims(dim3 d) {
  return "(" + std::to_string(d.x) + "," + std::to_string(d.y) + "," + std::to_string(d.z) + ")";
}

EmuThread* require_thread(const char* what) {
  EmuThread* t = tl_current;
  if (t == nullptr) {
    std::fprintf(stderr, "gndet emulated CUDA device: %s called outside a kernel\n", what);
    std::abort();
  }
  return t;
}

void acquire_token() {
  std::unique_lock<std::mutex> lock(g_tokens_mu);
  if (g_tokens < 0) g_tokens = settings().running;
  g_tokens_cv.wait(lock, [] { return g_tokens > 0; });
  --g_tokens;
}

void release_token() {
  {
    std::lock_guard<std::mutex> lock(g_tokens_mu);
    ++g_tokens;
  }
  g_tokens_cv.notify_one();
}

void set_state(EmuThread& t, EmuThread::State s) {
  Block& b = *t.block;
  const uint32_t bit = 1u << t.lane;
  if (s == EmuThread::State::Runnable) {
    b.runnable[t.warp] |= bit;
  } else {
    b.runnable[t.warp] &= ~bit;
  }
  t.state = s;
}

void yield(EmuThread& t) {
  void* save = nullptr;
  to_scheduler(&save);
  const ctx::transfer_t r = ctx::jump_fcontext(t.scheduler, nullptr);
  arrived(save);
  t.scheduler = r.fctx;
  tl_current = &t;
}

namespace {

// ---- fibers ----

void thread_entry(ctx::transfer_t from) {
  first_arrival();
  auto* t = static_cast<EmuThread*>(from.data);
  t->scheduler = from.fctx;
  tl_current = t;
  t->block->grid->thread_main();
  t->checking = false;
  Block& b = *t->block;
  set_state(*t, EmuThread::State::Done);
  --b.live;
  ++b.exited;
  // Lanes of its warp waiting for it at a collective would wait for ever.
  for (int l = 0; l < 32 && t->warp * 32 + l < b.threads && !b.faulted; ++l) {
    const EmuThread& o = tl_worker->threads[t->warp * 32 + l];
    if (o.state == EmuThread::State::AtWarp && ((o.mask >> t->lane) & 1u)) {
      t->fault_error = cudaErrorLaunchFailure;
      t->fault = std::string("synccheck: ") + op_name(o.op, o.syncwarp) + " at " + o.file + ":" + std::to_string(o.line) +
                 ": lane " + std::to_string(t->lane) + " of its mask has exited while lane " + std::to_string(l) +
                 " waits for it";
      b.faulted = true;
    }
  }
  // A thread leaving while others wait at a barrier: that barrier is not reached by every thread.
  if (b.at_barrier > 0 && !b.faulted) {
    t->fault_error = cudaErrorLaunchFailure;
    t->fault = "synccheck: " + thread_name(*t) + " exited while " + std::to_string(b.at_barrier) +
               " threads of its block wait at __syncthreads at " + b.barrier_file + ":" +
               std::to_string(b.barrier_line) + ": a barrier every thread of the block must reach";
    b.faulted = true;
  }
  tl_current = nullptr;
  to_scheduler(nullptr);  // this fiber's frames are gone for good
  ctx::jump_fcontext(t->scheduler, nullptr);
  std::abort();  // a finished fiber is never resumed
}

void resume(EmuThread& t) {
  tl_current = &t;
  void* save = nullptr;
  to_fiber(&save, t);
  const ctx::transfer_t r = ctx::jump_fcontext(t.context, &t);
  arrived(save);
  t.context = r.fctx;
  tl_current = nullptr;
}

// ---- static __shared__ variables: thread_locals of the module holding the kernel ----

int add_tls_block(dl_phdr_info* info, size_t, void* data) {
  auto* out = static_cast<std::vector<std::pair<uintptr_t, uintptr_t>>*>(data);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_TLS && info->dlpi_tls_data != nullptr && ph.p_memsz > 0) {
      const auto lo = reinterpret_cast<uintptr_t>(info->dlpi_tls_data);
      out->emplace_back(lo, lo + ph.p_memsz);
    }
  }
  return 0;
}

// ---- the worker pool ----

class Pool {
 public:
  static Pool& get() {
    static Pool* p = new Pool;  // never destroyed: its threads live as long as the process
    return *p;
  }

  void run(const std::shared_ptr<Grid>& g) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      grids_.push_back(g);
    }
    const uint64_t wake = std::min<uint64_t>(g->blocks, static_cast<uint64_t>(workers()));
    for (uint64_t i = 0; i < wake; ++i) cv_.notify_one();
    std::unique_lock<std::mutex> lock(g->mu);
    g->cv.wait(lock, [&] { return g->finished == g->blocks; });
  }

 private:
  Pool() {
    for (int i = 0; i < workers(); ++i) std::thread(&Pool::worker_main, this, i).detach();
  }

  void worker_main(int index) {
    allow_device_access_on_this_thread();
    Worker w;
    w.index = index;
    w.threads.resize(kMaxThreads);
    w.stack_bytes = kStackBytes;
    void* m = mmap(nullptr, kStackBytes * kMaxThreads, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
      std::fprintf(stderr, "gndet emulated CUDA device: cannot map the fiber stacks of a worker\n");
      std::abort();
    }
    w.stacks = static_cast<char*>(m);
    register_stacks(m, kStackBytes * kMaxThreads);
    w.rng.seed(settings().seed * 7919 + static_cast<uint64_t>(index));
    // tl_worker is initial-exec TLS: this thread's TLS block of the library exists from its start.
    tl_worker = &w;
    for (const auto& [lo, hi] : tls_blocks()) {
      SharedRange r;
      r.lo = lo;
      r.hi = hi;
      r.cells.resize((hi - lo + 3) / 4);
      w.shared.push_back(std::move(r));
    }
    w.shared.push_back(SharedRange{0, 0, true, {}});
    for (;;) {
      std::shared_ptr<Grid> g;
      uint64_t b = 0;
      {
        std::unique_lock<std::mutex> lock(mu_);
        for (;;) {
          while (!grids_.empty() && grids_.front()->next_block.load() >= grids_.front()->blocks) grids_.pop_front();
          if (!grids_.empty()) {
            g = grids_.front();
            b = g->next_block.fetch_add(1);
            if (b < g->blocks) break;
            continue;
          }
          cv_.wait(lock);
        }
      }
      if (!g->faulted.load()) {
        acquire_token();
        run_block(w, *g, b);
        release_token();
      }
      bool last;
      {
        std::lock_guard<std::mutex> lock(g->mu);
        last = ++g->finished == g->blocks;
      }
      if (last) g->cv.notify_all();
    }
  }

  void run_block(Worker& w, Grid& g, uint64_t linear_block);

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Grid>> grids_;
};

std::atomic<uint64_t> g_block_serial{0};
std::atomic<uint64_t> g_launches{0};

// The lines of a deadlock report: what every thread of the block waits for.
std::string block_listing(const Block& b, const std::vector<EmuThread>& threads) {
  std::ostringstream out;
  for (int wi = 0; wi < b.warps; ++wi) {
    std::string last;
    int from = -1;
    auto flush = [&](int to) {
      if (from < 0) return;
      out << "    warp " << wi << " lanes " << from << "-" << to << ": " << last << "\n";
    };
    for (int lane = 0; lane < 32 && wi * 32 + lane < b.threads; ++lane) {
      const EmuThread& t = threads[wi * 32 + lane];
      std::string what;
      switch (t.state) {
        case EmuThread::State::Runnable: what = "runnable"; break;
        case EmuThread::State::AtBarrier: what = std::string("at __syncthreads ") + t.file + ":" + std::to_string(t.line); break;
        case EmuThread::State::AtWarp: what = std::string("at ") + op_name(t.op, t.syncwarp) + " " + t.file + ":" + std::to_string(t.line); break;
        case EmuThread::State::Done: what = "exited"; break;
        case EmuThread::State::Faulted: what = "faulted"; break;
      }
      if (what != last) {
        flush(lane - 1);
        from = lane;
        last = what;
      }
    }
    flush(std::min(31, b.threads - wi * 32 - 1));
  }
  return out.str();
}

void Pool::run_block(Worker& w, Grid& g, uint64_t linear_block) {
  const dim3 gd = g.config.grid, bd = g.config.block;
  Block b;
  b.grid = &g;
  b.idx = {static_cast<unsigned>(linear_block % gd.x), static_cast<unsigned>(linear_block / gd.x % gd.y),
           static_cast<unsigned>(linear_block / (uint64_t{gd.x} * gd.y))};
  b.dim = bd;
  b.threads = static_cast<int>(bd.x * bd.y * bd.z);
  b.warps = (b.threads + 31) / 32;
  b.live = b.threads;
  b.serial = ++g_block_serial;
  b.warp_epoch.assign(b.warps, 0);
  b.runnable.assign(b.warps, 0);
  if (g.config.shared_bytes > 0) {
    if (w.dynamic_buffer.size() < g.config.shared_bytes + 16) w.dynamic_buffer.resize(g.config.shared_bytes + 16);
    const uintptr_t raw = reinterpret_cast<uintptr_t>(w.dynamic_buffer.data());
    b.dynamic_shared = reinterpret_cast<char*>((raw + 15) & ~uintptr_t{15});
    b.dynamic_bytes = g.config.shared_bytes;
    SharedRange& dyn = w.shared.back();
    dyn.lo = reinterpret_cast<uintptr_t>(b.dynamic_shared);
    dyn.hi = dyn.lo + b.dynamic_bytes;
    if (dyn.cells.size() < (b.dynamic_bytes + 3) / 4) dyn.cells.resize((b.dynamic_bytes + 3) / 4);
  } else {
    w.shared.back().lo = w.shared.back().hi = 0;
  }
  for (int i = 0; i < b.threads; ++i) {
    EmuThread& t = w.threads[i];
    t.block = &b;
    t.tid = {static_cast<unsigned>(i % bd.x), static_cast<unsigned>(i / bd.x % bd.y),
             static_cast<unsigned>(i / (bd.x * bd.y))};
    t.linear = i;
    t.warp = i / 32;
    t.lane = i % 32;
    char* lo = w.stacks + static_cast<size_t>(i) * w.stack_bytes;
    t.stack_lo = reinterpret_cast<uintptr_t>(lo);
    t.stack_size = w.stack_bytes;
    reset_stack(t);
    std::memcpy(lo, &kStackCanary, sizeof(kStackCanary));
    t.checking = false;
    t.fault_error = cudaSuccess;
    t.fault.clear();
    t.fault_pc = nullptr;
    t.context = ctx::make_fcontext(lo + w.stack_bytes, w.stack_bytes - 64, thread_entry);
    t.state = EmuThread::State::Runnable;
    b.runnable[t.warp] |= 1u << t.lane;
  }

  const Schedule sched = settings().schedule;
  auto run_one = [&](EmuThread& t) {
    resume(t);
    uint64_t canary;
    std::memcpy(&canary, reinterpret_cast<char*>(t.stack_lo), sizeof(canary));
    if (canary != kStackCanary && !b.faulted) {
      t.fault_error = cudaErrorLaunchFailure;
      t.fault = "stack overflow: " + thread_name(t) + " used more than the " + std::to_string(w.stack_bytes >> 10) +
                " KiB of its fiber stack";
      b.faulted = true;
    }
  };
  while (b.live > 0 && !b.faulted && !b.aborted) {
    bool ran = false;
    if (sched == Schedule::Random) {
      std::vector<int> candidates;
      for (int wi = 0; wi < b.warps; ++wi) {
        for (uint32_t m = b.runnable[wi]; m != 0; m &= m - 1) candidates.push_back(wi * 32 + __builtin_ctz(m));
      }
      while (!candidates.empty() && !b.faulted && !b.aborted) {
        const size_t k = std::uniform_int_distribution<size_t>(0, candidates.size() - 1)(w.rng);
        EmuThread& t = w.threads[candidates[k]];
        candidates[k] = candidates.back();
        candidates.pop_back();
        if (t.state != EmuThread::State::Runnable) continue;
        run_one(t);
        ran = true;
      }
    } else {
      for (int step = 0; step < b.warps && !b.faulted && !b.aborted; ++step) {
        const int wi = sched == Schedule::WarpGreedy ? step : b.warps - 1 - step;
        // This warp runs until none of its lanes can go on; each pass gives every lane a turn.
        while (b.runnable[wi] != 0 && !b.faulted && !b.aborted) {
          for (uint32_t m = b.runnable[wi]; m != 0 && !b.faulted; m &= m - 1) {
            EmuThread& t = w.threads[wi * 32 + __builtin_ctz(m)];
            if (t.state == EmuThread::State::Runnable) {
              run_one(t);
              ran = true;
            }
          }
        }
      }
    }
    if (b.faulted || b.aborted || b.live == 0 || ran) continue;
    // Nothing can run: either every live thread waits at the barrier, or the block is stuck.
    if (b.at_barrier == b.live && b.exited == 0) {
      // Released by the last arrival normally; reaching here means it was not (cannot happen).
      b.faulted = true;
      w.threads[0].fault_error = cudaErrorLaunchFailure;
      w.threads[0].fault = "internal error of the emulator: a complete barrier was not released";
      break;
    }
    b.faulted = true;
    EmuThread& t = w.threads[0];
    t.fault_error = cudaErrorLaunchFailure;
    t.fault = "synccheck: block " + dims(b.idx) + " cannot go on: every thread waits, for a barrier or a warp "
              "collective that some threads never reach:\n" + block_listing(b, w.threads);
  }
  if (b.faulted && !g.faulted.exchange(true)) {
    const EmuThread* culprit = nullptr;
    for (int i = 0; i < b.threads && culprit == nullptr; ++i) {
      if (!w.threads[i].fault.empty()) culprit = &w.threads[i];
    }
    std::string report = culprit != nullptr ? culprit->fault : std::string("fault");
    if (culprit != nullptr && culprit->fault_pc != nullptr) report += "\n  at " + source_location(culprit->fault_pc);
    report += "\n  in " + g.name();
    if (culprit != nullptr) report += "\n  by " + thread_name(*culprit);
    g.error = culprit != nullptr ? culprit->fault_error : cudaErrorLaunchFailure;
    g.report = report;
  }
  // Unfinished fibers (a fault) are abandoned: their stacks are reused by the next block and
  // nothing in them owns resources (kernel frames hold values only).
  for (int i = 0; i < b.threads; ++i) w.threads[i].block = nullptr;
}

}  // namespace

// ---- reports ----

std::string Grid::name() const {
  return std::string("kernel ") + site.kernel + " launched at " + site.file + ":" + std::to_string(site.line) +
         ", grid " + dims(config.grid) + " x block " + dims(config.block) +
         (config.shared_bytes > 0 ? ", " + std::to_string(config.shared_bytes) + " bytes of dynamic shared memory" : "");
}

std::string thread_name(const EmuThread& t) {
  return "thread " + dims(t.tid) + " of block " + (t.block != nullptr ? dims(t.block->idx) : std::string("?"));
}

namespace {
// "/src/build-emu/ops/cuda/x.cu:57" (a rewritten source compiled in the build folder, named by its
// #line) -> "ops/cuda/x.cu:57".
std::string source_relative(const std::string& path) {
  const std::string root = std::string(GNDET_SOURCE_DIR) + "/";
  if (path.rfind(root, 0) != 0) return path;
  std::string rest = path.substr(root.size());
  const size_t slash = rest.find('/');
  const std::string file = rest.substr(0, rest.rfind(':'));
  if (slash != std::string::npos && !std::ifstream(root + file).good()) {
    const std::string inner = rest.substr(slash + 1);
    if (std::ifstream(root + inner.substr(0, inner.rfind(':'))).good()) return inner;
  }
  return rest;
}
}  // namespace

std::string source_location(const void* pc) {
  Dl_info info{};
  if (pc == nullptr || dladdr(pc, &info) == 0 || info.dli_fname == nullptr) return "an unknown code address";
  std::string fn = "?";
  if (info.dli_sname != nullptr) {
    int status = 0;
    char* d = abi::__cxa_demangle(info.dli_sname, nullptr, nullptr, &status);
    fn = status == 0 && d != nullptr ? d : info.dli_sname;
    std::free(d);
  }
  // The line from the debug line table, when binutils' addr2line is there (a report is rare): the
  // innermost frame and the frames it is inlined in, up to the emulator's launch wrapper.
  const uintptr_t offset = reinterpret_cast<uintptr_t>(pc) - reinterpret_cast<uintptr_t>(info.dli_fbase) - 1;
  char cmd[1024];
  std::snprintf(cmd, sizeof(cmd), "addr2line -e '%s' -i 0x%" PRIxPTR " 2>/dev/null", info.dli_fname, offset);
  std::string lines;
  if (FILE* p = popen(cmd, "r")) {
    char buf[512];
    bool more = true;
    while (std::fgets(buf, sizeof(buf), p) != nullptr) {
      std::string l = buf;
      while (!l.empty() && (l.back() == '\n' || l.back() == '\r')) l.pop_back();
      if (l.empty() || l.find("??") != std::string::npos) continue;
      if (l.find("cuda_runtime.h") != std::string::npos || l.rfind("/usr/", 0) == 0) more = false;
      if (more) lines += (lines.empty() ? "" : ", inlined in ") + source_relative(l);
    }
    pclose(p);
  }
  if (fn.size() > 160) fn = fn.substr(0, 157) + "...";
  if (!lines.empty()) return fn == "?" ? lines : lines + " (" + fn + ")";
  char off[32];
  std::snprintf(off, sizeof(off), "+0x%" PRIxPTR, offset);
  return std::string(info.dli_fname) + off + " (" + fn + ")";
}

void raise_fault(EmuThread* t, cudaError_t error, std::string what, const void* pc) {
  t->checking = false;
  t->fault_error = error;
  t->fault = std::move(what);
  t->fault_pc = pc;
  t->block->faulted = true;
  set_state(*t, EmuThread::State::Faulted);
  yield(*t);
  std::abort();  // a faulted thread is never resumed
}

std::vector<std::pair<uintptr_t, uintptr_t>> tls_blocks() {
  // Every module's: kernel code touches thread_locals only through __shared__ (the emulator's own
  // state is read by functions in uninstrumented files), so any TLS it touches is shared memory.
  std::vector<std::pair<uintptr_t, uintptr_t>> out;
  dl_iterate_phdr(add_tls_block, &out);
  return out;
}

void run_grid(const std::shared_ptr<Grid>& g) {
  Pool::get().run(g);
  if (g->faulted.load()) throw DeviceFault{g->error, g->report};
}

int max_active_blocks_per_sm(int threads, size_t shared_bytes) {
  int n = std::min(settings().resident_per_sm, 2048 / std::max(threads, 1));
  if (shared_bytes > 0) n = std::min<int>(n, static_cast<int>((size_t{228} << 10) / (shared_bytes + 1024)));
  return std::max(n, 0);
}

void submit_launch(const LaunchSite& site, const LaunchConfig& c, std::function<void()> thread_main) {
  if (sticky_error() != cudaSuccess) {
    api_result(sticky_error());
    return;
  }
  auto g = std::make_shared<Grid>(site, c, std::move(thread_main));
  auto refuse = [&](cudaError_t e, const std::string& why) {
    set_launch_detail(e, g->name() + ": " + why);
    api_result(e);
  };
  const dim3 gd = c.grid, bd = c.block;
  const uint64_t threads = uint64_t{bd.x} * bd.y * bd.z;
  if (bd.x == 0 || bd.y == 0 || bd.z == 0 || gd.x == 0 || gd.y == 0 || gd.z == 0) {
    return refuse(cudaErrorInvalidConfiguration, "a grid or block dimension is 0");
  }
  if (threads > 1024 || bd.x > 1024 || bd.y > 1024 || bd.z > 64) {
    return refuse(cudaErrorInvalidConfiguration, std::to_string(threads) + " threads per block; the device allows at "
                                                   "most 1024, and 1024 x 1024 x 64 per dimension");
  }
  if (gd.x > 0x7fffffffu || gd.y > 65535 || gd.z > 65535) {
    return refuse(cudaErrorInvalidConfiguration, "grid.x may be at most 2^31 - 1, grid.y and grid.z at most 65535");
  }
  if (c.shared_bytes > (size_t{48} << 10)) {
    return refuse(cudaErrorInvalidValue, std::to_string(c.shared_bytes) +
                                             " bytes of dynamic shared memory; a launch may ask for 49152 without "
                                             "cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize)");
  }
  const StreamPtr s = stream_for_handle(c.stream);
  if (s == nullptr) return refuse(cudaErrorInvalidResourceHandle, "unknown stream");
  g->blocks = uint64_t{gd.x} * gd.y * gd.z;
  g->launch_id = ++g_launches;
  static const bool trace = std::getenv("GNDET_EMU_TRACE") != nullptr;
  if (trace) std::fprintf(stderr, "gndet emu: %s\n", g->name().c_str());
  enqueue(s, std::string("kernel ") + site.kernel, [g] { run_grid(g); });
}

void enter_kernel_code() {
  if (EmuThread* t = tl_current) t->checking = access_hooks_built() && (settings().memcheck || settings().racecheck);
}

void leave_kernel_code() {
  if (EmuThread* t = tl_current) t->checking = false;
}

}  // namespace gndet::cuda::emu
