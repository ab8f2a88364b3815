// How an op joins autograd:
//
//   GNDET_OP(kRelu, "relu");                       // registers "relu" as a differentiable op
//   Tensor relu(const Tensor& x) {
//     Tensor y = ...forward kernel...;
//     autograd::record(kRelu, {x}, {y}, [y = autograd::Saved(y)](const Tensors& g) {
//       return Tensors{relu_backward(g[0], y.get())};
//     });
//     return y;
//   }
//
// record() does nothing when grad mode is off or no input requires grad. The closure receives one
// gradient per output (undefined where no gradient arrived; single-output ops always get one) and
// returns one per listed input, in order. It must capture what it needs as Saved (detached,
// version-checked) tensors, never the outputs themselves, which would form a reference cycle.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "tensor/grad_mode.h"
#include "autograd/node.h"
#include "autograd/trace.h"

namespace gndet::autograd {

// One differentiable operation, registered by name at load time. `recorded` counts how often its
// backward was attached; the op-registry test uses it as proof that the op has a backward.
struct OpDef {
  explicit OpDef(const char* name);
  const char* name;
  mutable std::atomic<uint64_t> recorded{0};
};
const std::vector<const OpDef*>& registered_ops();

// A tensor saved for backward: detached (no cycle through the graph) and stamped with its
// storage's version, so that an in-place write between forward and backward is caught.
class Saved {
 public:
  Saved() = default;
  explicit Saved(const Tensor& t) : t_(t.defined() ? t.detach() : Tensor()), version_(t.defined() ? t.version() : 0) {
    if (tracing()) detail::note_saved(t_);  // gndet graph: counted for the next recorded node
  }
  Tensor get() const;
  bool defined() const { return t_.defined(); }

 private:
  Tensor t_;
  uint64_t version_ = 0;
};

// True when recording `inputs` would build a graph.
bool needs_grad(const Tensors& inputs);

void record(const OpDef& op, const Tensors& inputs, const Tensors& outputs, FunctionNode::Backward backward);

// Sums two gradients of one tensor (the engine's only arithmetic). autograd sits below ops/, so
// ops/elementwise.cpp registers its add here at load time, the way tensor/backend.h receives the
// CUDA backend: the engine never includes ops/. With into_a the engine promises that nothing
// else can see a's memory, and the sum may be written there (a += b, the same values as a + b)
// instead of into a new tensor.
using GradientSum = Tensor (*)(const Tensor& a, const Tensor& b, bool into_a);
void register_gradient_sum(GradientSum sum);

}  // namespace gndet::autograd

#define GNDET_OP(var, name) static const ::gndet::autograd::OpDef var(name)
