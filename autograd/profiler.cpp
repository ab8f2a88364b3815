#include "autograd/profiler.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

#include "tensor/backend.h"
#include "tensor/error.h"

namespace gndet::autograd::profiler {
namespace {

using Clock = std::chrono::steady_clock;

std::atomic<Profiler*> g_current{nullptr};

struct Open {
  Range range;
  int64_t children_ns = 0;
  Device device{};
};

// This thread's open ranges; `owner` tells whether they belong to the running profiler.
struct ThreadState {
  const void* owner = nullptr;
  std::vector<Open> stack;
  uint32_t index = 0;
  double next_flops = 0;
  int64_t pending_bytes = 0;  // allocated since the last kernel: the next kernel's op made them
  bool backward = false;
};
thread_local ThreadState t_state;

}  // namespace

struct Profiler::Impl {
  explicit Impl(bool sync) : sync_cuda(sync) {}
  bool sync_cuda;
  Clock::time_point t0 = Clock::now();
  std::mutex mutex;
  std::vector<Range> closed;
  std::map<std::thread::id, uint32_t> threads;

  int64_t now() const { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0).count(); }

  ThreadState& state(const void* owner) {
    ThreadState& s = t_state;
    if (s.owner != owner) {  // first range of this thread under this profiler
      s.owner = owner;
      s.stack.clear();
      s.next_flops = 0;
      s.pending_bytes = 0;
      std::lock_guard<std::mutex> lock(mutex);
      auto [it, added] = threads.emplace(std::this_thread::get_id(), static_cast<uint32_t>(threads.size()));
      s.index = it->second;
    }
    return s;
  }

  void open(const void* owner, std::string name, Kind kind, const std::string* scope, Device device = Device{}) {
    ThreadState& s = state(owner);
    Open o;
    o.range.name = std::move(name);
    o.range.kind = kind;
    o.range.phase = s.backward ? Phase::kBackward : Phase::kForward;
    o.range.thread = s.index;
    o.range.depth = static_cast<int>(s.stack.size());
    // A range inherits the innermost module of its parents unless it names its own.
    if (scope != nullptr) {
      o.range.scope = *scope;
    } else if (!s.stack.empty()) {
      o.range.scope = s.stack.back().range.scope;
    }
    o.device = device;
    o.range.start_ns = now();
    s.stack.push_back(std::move(o));
  }

  void close(const void* owner) {
    ThreadState& s = state(owner);
    if (s.stack.empty()) return;  // opened before this profiler started
    Open o = std::move(s.stack.back());
    s.stack.pop_back();
    o.range.total_ns = now() - o.range.start_ns;
    o.range.self_ns = std::max<int64_t>(0, o.range.total_ns - o.children_ns);
    if (!s.stack.empty()) s.stack.back().children_ns += o.range.total_ns;
    std::lock_guard<std::mutex> lock(mutex);
    closed.push_back(std::move(o.range));
  }
};

Profiler::Profiler(bool sync_cuda) : impl_(new Impl(sync_cuda)) {
  Profiler* expected = nullptr;
  if (!g_current.compare_exchange_strong(expected, this)) {
    delete impl_;
    throw Error("profiler: another profiler is already running");
  }
  g_execution_observer.store(this);
}

Profiler::~Profiler() {
  g_execution_observer.store(nullptr);
  g_current.store(nullptr);
  delete impl_;
}

void Profiler::begin(std::string name, Kind kind, const std::string* scope) {
  impl_->open(this, std::move(name), kind, scope);
}
void Profiler::end() { impl_->close(this); }

std::vector<Range> Profiler::ranges() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->closed;
}

void Profiler::kernel_begin(const char* kernel, Device device) {
  ThreadState& s = impl_->state(this);
  if (impl_->sync_cuda && device.is_cuda()) cuda::synchronize(device.index);  // earlier queued work is not ours
  const double flops = s.next_flops;
  s.next_flops = 0;
  impl_->open(this, kernel, Kind::kKernel, nullptr, device);
  s.stack.back().range.flops = flops;
  s.stack.back().range.bytes = s.pending_bytes;
  s.pending_bytes = 0;
}

void Profiler::kernel_end() {
  ThreadState& s = impl_->state(this);
  if (!s.stack.empty() && impl_->sync_cuda && s.stack.back().device.is_cuda()) {
    cuda::synchronize(s.stack.back().device.index);
  }
  impl_->close(this);
}

void Profiler::allocated(int64_t bytes, Device) {
  // Inside a kernel: its scratch. Outside: an op's outputs, made just before its kernel runs.
  ThreadState& s = impl_->state(this);
  if (!s.stack.empty() && s.stack.back().range.kind == Kind::kKernel) {
    s.stack.back().range.bytes += bytes;
  } else {
    s.pending_bytes += bytes;
  }
}

Profiler* current() { return g_current.load(std::memory_order_relaxed); }

RangeGuard::RangeGuard(const char* name, Kind kind, const std::string* scope) {
  if (Profiler* p = current()) {
    p->begin(name, kind, scope);
    open_ = true;
  }
}
RangeGuard::~RangeGuard() {
  if (!open_) return;
  if (Profiler* p = current()) p->end();
}

void set_next_kernel_flops(double flops) {
  if (current() != nullptr) t_state.next_flops = flops;
}

BackwardPhase::BackwardPhase() : previous_(t_state.backward) { t_state.backward = true; }
BackwardPhase::~BackwardPhase() { t_state.backward = previous_; }

// ---- reports ----

namespace {

struct Row {
  std::string key;
  int64_t calls = 0, self_ns = 0, total_ns = 0, bytes = 0;
  double flops = 0;
};

std::string fmt(const char* f, double a) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, a);
  return buf;
}

// A JSON string literal (names are identifiers and dotted module paths; escaped all the same).
std::string json_quote(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::kKernel: return "kernel";
    case Kind::kBackward: return "backward";
    case Kind::kModule: return "module";
    case Kind::kStep: return "step";
  }
  return "?";
}

// The first two dotted parts: backbone.layer3.2.conv1 -> backbone.layer3.
std::string module_group(const std::string& scope) {
  if (scope.empty()) return "(outside modules)";
  const size_t first = scope.find('.');
  if (first == std::string::npos) return scope;
  const size_t second = scope.find('.', first + 1);
  return second == std::string::npos ? scope : scope.substr(0, second);
}

std::string table(const std::string& title, std::vector<Row> rows, int64_t step_ns, int top, bool with_rates) {
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.self_ns > b.self_ns; });
  size_t width = title.size();
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(top); ++i) width = std::max(width, rows[i].key.size());
  std::string out = title + std::string(width - title.size() + 2, ' ') +
                    "   calls    self ms   total ms  % of steps  alloc MB" + (with_rates ? "   GFLOP/s" : "") + "\n";
  for (size_t i = 0; i < rows.size() && i < static_cast<size_t>(top); ++i) {
    const Row& r = rows[i];
    out += r.key + std::string(width - r.key.size() + 2, ' ');
    out += fmt("%8.0f", static_cast<double>(r.calls));
    out += fmt(" %10.2f", r.self_ns * 1e-6) + fmt(" %10.2f", r.total_ns * 1e-6);
    out += fmt(" %10.1f%%", step_ns > 0 ? 100.0 * static_cast<double>(r.self_ns) / static_cast<double>(step_ns) : 0.0);
    out += fmt(" %9.1f", static_cast<double>(r.bytes) / (1 << 20));
    if (with_rates) out += r.flops > 0 && r.total_ns > 0 ? fmt(" %9.1f", r.flops / static_cast<double>(r.total_ns)) : "         -";
    out += "\n";
  }
  if (rows.size() > static_cast<size_t>(top)) out += "... " + std::to_string(rows.size() - top) + " more\n";
  return out;
}

void add(std::map<std::string, Row>& rows, const std::string& key, const Range& r, int64_t total_ns) {
  Row& row = rows[key];
  row.key = key;
  ++row.calls;
  row.self_ns += r.self_ns;
  row.total_ns += total_ns;
  row.bytes += r.bytes;
  row.flops += r.flops;
}

}  // namespace

std::string summary_table(const std::vector<Range>& ranges, int top) {
  int64_t step_ns = 0, steps = 0, self_total = 0;
  std::map<std::string, Row> ops, modules, phases;
  for (const Range& r : ranges) {
    if (r.kind == Kind::kStep) {
      step_ns += r.total_ns;
      ++steps;
      continue;
    }
    if (r.kind == Kind::kModule) continue;  // their self time is framework time between kernels
    self_total += r.self_ns;
    // An op row's total is its ranges' totals; module and phase rows sum self times (what ran inside).
    const std::string key = std::string(r.kind == Kind::kBackward ? "backward: " : "") + r.name;
    add(ops, key, r, r.total_ns);
    add(modules, module_group(r.scope), r, r.self_ns);
    add(phases, r.phase == Phase::kBackward ? "backward" : "forward", r, r.self_ns);
  }
  auto values = [](const std::map<std::string, Row>& m) {
    std::vector<Row> v;
    for (const auto& [k, r] : m) v.push_back(r);
    return v;
  };
  std::string out = fmt("%.0f step(s), ", static_cast<double>(steps)) + fmt("%.3f s in all; ", step_ns * 1e-9) +
                    fmt("kernels and backward nodes account for %.1f%% of it ", step_ns > 0 ? 100.0 * self_total / step_ns : 0.0) +
                    "(the rest: framework code between them)\n\n";
  out += table("op (self time: outside nested ranges)", values(ops), step_ns, top, true) + "\n";
  out += table("module (kernels and backward nodes inside)", values(modules), step_ns, top, true) + "\n";
  out += table("phase", values(phases), step_ns, top, true);
  return out;
}

std::string chrome_trace_json(const std::vector<Range>& ranges) {
  std::string out = "{\"displayTimeUnit\": \"ms\", \"traceEvents\": [\n";
  uint32_t max_thread = 0;
  for (const Range& r : ranges) max_thread = std::max(max_thread, r.thread);
  // Lanes (tid): 1 steps, 2 modules, 3 the main thread's kernels and backward nodes, 4+ others.
  auto lane = [](const Range& r) -> uint32_t {
    if (r.kind == Kind::kStep) return 1;
    if (r.kind == Kind::kModule) return 2;
    return 3 + r.thread;
  };
  auto meta = [&](uint32_t tid, const std::string& name) {
    out += "{\"ph\": \"M\", \"pid\": 1, \"tid\": " + std::to_string(tid) +
           ", \"name\": \"thread_name\", \"args\": {\"name\": " + json_quote(name) + "}},\n";
  };
  meta(1, "steps");
  meta(2, "modules");
  meta(3, "ops (main thread)");
  for (uint32_t t = 1; t <= max_thread; ++t) meta(3 + t, "ops (thread " + std::to_string(t) + ")");
  bool first = true;
  for (const Range& r : ranges) {
    if (!first) out += ",\n";
    first = false;
    out += "{\"ph\": \"X\", \"pid\": 1, \"tid\": " + std::to_string(lane(r)) + ", \"name\": " + json_quote(r.name) +
           ", \"cat\": \"" + kind_name(r.kind) + "\", \"ts\": " + fmt("%.3f", r.start_ns * 1e-3) +
           ", \"dur\": " + fmt("%.3f", r.total_ns * 1e-3) + ", \"args\": {\"module\": " + json_quote(r.scope) +
           ", \"phase\": \"" + (r.phase == Phase::kBackward ? "backward" : "forward") + "\", \"self_us\": " +
           fmt("%.3f", r.self_ns * 1e-3) + ", \"alloc_bytes\": " + std::to_string(r.bytes) +
           (r.flops > 0 ? ", \"gflops\": " + fmt("%.4f", r.flops * 1e-9) : std::string()) + "}}";
  }
  out += "\n]}\n";
  return out;
}

}  // namespace gndet::autograd::profiler
