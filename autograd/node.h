// The backward graph. Each op that records itself creates one Node; its edges point at the nodes
// that produced its differentiable inputs (or at a leaf's AccumulateGrad). Backward runs nodes in
// reverse creation order once all of their gradients have arrived (see engine.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "tensor/tensor.h"

namespace gndet::autograd {

class Node;
struct NodeTrace;  // autograd/trace.h

struct Edge {
  std::shared_ptr<Node> node;  // null: the input does not need a gradient
  uint32_t input_nr = 0;       // which of node's gradient slots this edge feeds
};

// What a gradient for one input must look like; checked after every backward call.
struct InputMeta {
  Shape shape;
  DType dtype;
  Device device;
};

class Node {
 public:
  Node(const char* name, uint32_t num_outputs);
  virtual ~Node() = default;

  // grads[i] is the gradient of forward output i (undefined if none reached it). Returns one
  // gradient per forward input edge (undefined where there is none).
  virtual Tensors apply(Tensors&& grads) = 0;
  // Frees what the forward saved for backward; a later apply() then throws.
  virtual void release() {}
  // Runs as soon as its gradients are in, ahead of the newest-first order (leaf accumulators: a
  // parameter's gradient is then final while backward goes on, which post-accumulate hooks use).
  virtual bool runs_first() const { return false; }

  const char* name() const { return name_; }
  uint32_t num_outputs() const { return num_outputs_; }
  uint64_t sequence_nr() const { return sequence_nr_; }

  std::vector<Edge> next_edges;
  std::vector<InputMeta> input_meta;  // parallel to next_edges
  std::shared_ptr<const NodeTrace> trace;  // scope, output shapes, saved tensors; only under a TraceGuard

 private:
  const char* name_;
  uint32_t num_outputs_;
  uint64_t sequence_nr_;
};

// The node every recorded op gets: a closure computing input gradients from output gradients.
class FunctionNode final : public Node {
 public:
  using Backward = std::function<Tensors(const Tensors& grads)>;
  FunctionNode(const char* name, uint32_t num_outputs, Backward fn)
      : Node(name, num_outputs), fn_(std::move(fn)) {}
  Tensors apply(Tensors&& grads) override;
  void release() override { fn_ = nullptr; }

 private:
  Backward fn_;
};

// Sink for a leaf tensor: adds the incoming gradient into leaf.grad(), then runs the leaf's
// post-accumulate hooks.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const Tensor& leaf);
  Tensors apply(Tensors&& grads) override;
  bool runs_first() const override { return true; }
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }  // null once the leaf is gone

 private:
  std::weak_ptr<TensorImpl> leaf_;  // weak: the leaf owns this node, not the other way round
};

// The edge through which a gradient for `t` flows: its grad_fn, its accumulator, or none.
Edge gradient_edge(const Tensor& t);

// Runs `hook` each time a backward has finished accumulating `leaf`'s gradient: leaf.grad() then
// holds this backward's total for it (PyTorch's register_post_accumulate_grad_hook). Data
// parallelism starts reducing a bucket of gradients from here while backward continues. A leaf
// that no gradient reaches in a backward does not run its hooks. Returns an id for removal.
uint64_t add_post_accumulate_hook(const Tensor& leaf, std::function<void()> hook);
void remove_post_accumulate_hook(const Tensor& leaf, uint64_t id);

// Runs backward from `roots` with the given output gradients (undefined = ones for one-element
// roots). Frees the graph's saved tensors unless retain_graph.
void run_backward(const Tensors& roots, const Tensors& grads, bool retain_graph);

}  // namespace gndet::autograd
