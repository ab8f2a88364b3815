// Graph tracing, for `gndet graph` and the guide (docs/internals.md): while a TraceGuard is alive
// on this thread, every node that record() creates also keeps
//   - the module scope it was created in ("backbone.layer1.0.conv2", pushed by nn::ModuleScope),
//   - the shapes and dtypes of its outputs,
//   - the tensors its backward saved (autograd::Saved objects made since the previous record()).
// Without a TraceGuard none of this is collected and nodes carry a null trace.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "autograd/node.h"

namespace gndet::autograd {

struct SavedInfo {
  Shape shape;
  DType dtype;
  int64_t bytes = 0;             // numel * element size of the saved view
  const void* storage = nullptr;  // identity of its storage: two views of one buffer share it
  int64_t storage_bytes = 0;     // the whole buffer (what stays alive until backward)
};

struct NodeTrace {
  std::string scope;
  std::vector<InputMeta> outputs;
  std::vector<SavedInfo> saved;
};

class TraceGuard {
 public:
  TraceGuard();
  ~TraceGuard();
  TraceGuard(const TraceGuard&) = delete;
  TraceGuard& operator=(const TraceGuard&) = delete;

 private:
  bool previous_;
};

bool tracing();

// Pushes `scope` for the nodes recorded until it is destroyed (only while tracing).
class ScopeGuard {
 public:
  explicit ScopeGuard(const std::string& scope);
  ~ScopeGuard();
  ScopeGuard(const ScopeGuard&) = delete;
  ScopeGuard& operator=(const ScopeGuard&) = delete;

 private:
  bool pushed_ = false;
};

namespace detail {
void note_saved(const Tensor& t);                  // called by Saved while tracing
std::shared_ptr<NodeTrace> take_trace(const Tensors& outputs);  // called by record()
void drop_pending_saved();
}  // namespace detail

}  // namespace gndet::autograd
