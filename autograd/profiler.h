// The op-level profiler (`gndet profile`, `--profile` on train / infer).
//
// While a Profiler is alive it records, per thread, nested timed ranges:
//   kernel     every Kernel<> call (tensor/dispatch.h), with the bytes it allocated and, for
//              convolutions and GEMMs, the floating-point operations the op announced
//   backward   every node the autograd engine runs (its kernels nest inside)
//   module     every module forward that labels its ops (nn::ModuleScope; needs nn::ModuleNames
//              of the root and an autograd::TraceGuard alive, as for `gndet graph`)
//   step       what the caller marks with step_begin() / step_end() (one training or inference
//              iteration)
// Each range knows its total time and its self time (total minus the ranges directly inside it).
// Off, the only cost is the kernel observer's null check (tensor/observer.h).
//
// Timing is host time. On a GPU kernels return before they finish, so a profile on CUDA
// synchronises the device after every kernel (sync_cuda): slower, but each kernel's time is its
// own. Results: summary tables like torch.profiler's key_averages, and a Chrome trace JSON (opens
// in Perfetto or chrome://tracing).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/observer.h"

namespace gndet::autograd::profiler {

enum class Kind : uint8_t { kKernel, kBackward, kModule, kStep };
enum class Phase : uint8_t { kForward, kBackward };

struct Range {
  std::string name;   // kernel ("conv2d_forward_kernel"), backward node ("conv2d"), module, "step 3"
  std::string scope;  // innermost module ("backbone.layer1.0.conv2"); "" outside any
  Kind kind = Kind::kKernel;
  Phase phase = Phase::kForward;
  uint32_t thread = 0;  // 0 = the thread that made the Profiler
  int depth = 0;        // nesting on its thread
  int64_t start_ns = 0, total_ns = 0, self_ns = 0;  // start from the Profiler's birth
  int64_t bytes = 0;    // kernels: what their op allocated (outputs made since the previous kernel
                        // on the thread, and scratch inside); 0 for other ranges
  double flops = 0;     // announced by the op (conv, GEMM); 0 when unknown
};

class Profiler final : public ExecutionObserver {
 public:
  explicit Profiler(bool sync_cuda = true);
  ~Profiler() override;  // stops recording
  Profiler(const Profiler&) = delete;
  Profiler& operator=(const Profiler&) = delete;

  // A range on this thread (RangeGuard is the scoped form); step ranges mark iterations.
  void begin(std::string name, Kind kind, const std::string* scope = nullptr);
  void end();
  void step_begin(const std::string& name) { begin(name, Kind::kStep); }
  void step_end() { end(); }
  std::vector<Range> ranges() const;  // closed ranges, in order of their end

  // ExecutionObserver
  void kernel_begin(const char* kernel, Device device) override;
  void kernel_end() override;
  void allocated(int64_t bytes, Device device) override;

 private:
  struct Impl;
  Impl* impl_;
};

// The running profiler, or null. The engine and ScopeGuard check it.
Profiler* current();

// Opens / closes a range of `kind` on this thread when a profiler runs (else does nothing).
class RangeGuard {
 public:
  RangeGuard(const char* name, Kind kind, const std::string* scope = nullptr);
  ~RangeGuard();
  RangeGuard(const RangeGuard&) = delete;
  RangeGuard& operator=(const RangeGuard&) = delete;

 private:
  bool open_ = false;
};

// The floating-point operations of the next kernel this thread calls (conv, GEMM): the op knows
// its shapes, the kernel slot does not.
void set_next_kernel_flops(double flops);

// While alive, ranges opened on this thread count as backward (the engine's loop).
class BackwardPhase {
 public:
  BackwardPhase();
  ~BackwardPhase();

 private:
  bool previous_;
};

// Summary tables, each row sorted by self time: per op (kernel and backward node names), per
// module (the first two parts of the scope: backbone.layer3, neck.fpn_convs, roi_head.mask_head)
// and per phase. `top` rows at most per table.
std::string summary_table(const std::vector<Range>& ranges, int top = 30);

// Chrome trace JSON ("traceEvents", complete events "X"): lane 1 the steps, lane 2 the modules,
// lane 3 the kernels and backward nodes of the main thread, further lanes other threads.
std::string chrome_trace_json(const std::vector<Range>& ranges);

}  // namespace gndet::autograd::profiler
