// A profiling session for the commands (profile, and --profile on train / infer): the profiler
// (autograd/profiler.h) plus the module labels it needs (autograd::TraceGuard, nn::ModuleNames),
// alive together on the calling thread, and the files it leaves: DIR/profile.txt (the tables) and
// DIR/trace.json (Chrome trace).
#pragma once

#include <memory>
#include <string>

#include "autograd/profiler.h"
#include "autograd/trace.h"
#include "nn/module.h"

namespace gndet::app {

class ProfileSession {
 public:
  explicit ProfileSession(const nn::Module& model);
  void step_begin(const std::string& name) { profiler_.step_begin(name); }
  void step_end() {
    profiler_.step_end();
    ++steps_;
  }
  int steps_done() const { return steps_; }
  // Stops recording, writes DIR/profile.txt and DIR/trace.json (atomically) and returns the
  // tables, headed by `title`.
  std::string finish(const std::string& dir, const std::string& title, int top = 25);

 private:
  autograd::profiler::Profiler profiler_;
  std::unique_ptr<autograd::TraceGuard> trace_;
  std::unique_ptr<nn::ModuleNames> names_;
  int steps_ = 0;
};

}  // namespace gndet::app
