#include "autograd/trace.h"

#include "autograd/profiler.h"

namespace gndet::autograd {
namespace {
thread_local bool g_tracing = false;
thread_local std::vector<std::string> g_scopes;
thread_local std::vector<SavedInfo> g_pending_saved;
}  // namespace

TraceGuard::TraceGuard() : previous_(g_tracing) {
  g_tracing = true;
  g_pending_saved.clear();
}
TraceGuard::~TraceGuard() {
  g_tracing = previous_;
  g_pending_saved.clear();
}
bool tracing() { return g_tracing; }

ScopeGuard::ScopeGuard(const std::string& scope) {
  if (!g_tracing) return;
  g_scopes.push_back(scope);
  pushed_ = true;
  if (profiler::Profiler* p = profiler::current()) p->begin(scope, profiler::Kind::kModule, &scope);
}
ScopeGuard::~ScopeGuard() {
  if (!pushed_) return;
  g_scopes.pop_back();
  if (profiler::Profiler* p = profiler::current()) p->end();
}

namespace detail {

void note_saved(const Tensor& t) {
  if (!g_tracing || !t.defined()) return;
  SavedInfo s;
  s.shape = t.shape();
  s.dtype = t.dtype();
  s.bytes = t.numel() * static_cast<int64_t>(itemsize(t.dtype()));
  s.storage = t.storage().get();
  s.storage_bytes = static_cast<int64_t>(t.storage()->nbytes());
  g_pending_saved.push_back(std::move(s));
}

std::shared_ptr<NodeTrace> take_trace(const Tensors& outputs) {
  auto trace = std::make_shared<NodeTrace>();
  trace->scope = g_scopes.empty() ? std::string() : g_scopes.back();
  for (const Tensor& y : outputs) trace->outputs.push_back({y.shape(), y.dtype(), y.device()});
  trace->saved = std::move(g_pending_saved);
  g_pending_saved.clear();
  return trace;
}

void drop_pending_saved() { g_pending_saved.clear(); }

}  // namespace detail
}  // namespace gndet::autograd
