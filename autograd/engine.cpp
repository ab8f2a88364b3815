// The backward engine, grad mode, record() and the op registry.
//
// Backward walks the graph from the roots, counts for every node how many edges lead into it, and
// then runs nodes from a queue ordered by creation (newest first) as soon as every gradient for
// them has arrived. Gradients reaching one slot from several consumers are summed. Leaves receive
// theirs through AccumulateGrad, which runs ahead of the queue's order: a parameter's gradient is
// final (and its post-accumulate hooks run) as soon as it is complete.
#include <atomic>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "autograd/function.h"
#include "tensor/grad_mode.h"
#include "autograd/node.h"
#include "autograd/profiler.h"
#include "autograd/trace.h"
#include "tensor/factory.h"

namespace gndet::autograd {

namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};
GradientSum g_gradient_sum = nullptr;  // set by ops/elementwise.cpp at load time

// a + b. `a_refs`: the handles to a's TensorImpl the engine holds. With no others and no view of
// a's storage, no one else can see a and the sum goes into it, not into a fresh tensor (in the
// R-50 training step the gain was below the VM's noise: it saves an allocation and an output).
Tensor sum_gradients(const Tensor& a, const Tensor& b, long a_refs) {
  GNDET_CHECK(g_gradient_sum != nullptr, "autograd: no gradient sum registered (ops/elementwise.cpp not linked)");
  const bool private_a = a.impl_ptr().use_count() == a_refs && a.storage().use_count() == 1;
  return g_gradient_sum(a, b, private_a);
}

AutogradMeta& meta(const Tensor& t) {
  auto& m = t.impl().autograd;
  if (!m) m = std::make_unique<AutogradMeta>();
  return *m;
}

std::string describe(const Tensor& t) {
  return shape_str(t.shape()) + " " + dtype_name(t.dtype()) + " on " + t.device().str();
}
}  // namespace

void register_gradient_sum(GradientSum sum) { g_gradient_sum = sum; }

// ---- ops and saved tensors ----

static std::vector<const OpDef*>& op_list() {
  static std::vector<const OpDef*> ops;  // function-local: safe from any static initialiser
  return ops;
}
OpDef::OpDef(const char* n) : name(n) { op_list().push_back(this); }
const std::vector<const OpDef*>& registered_ops() { return op_list(); }

Tensor Saved::get() const {
  if (t_.defined()) {
    GNDET_CHECK(t_.version() == version_, "a tensor of shape ", shape_str(t_.shape()),
                " saved for backward was modified in place after it was saved (version ", version_, ", now ",
                t_.version(), ")");
  }
  return t_;
}

// ---- nodes ----

Node::Node(const char* name, uint32_t num_outputs)
    : name_(name), num_outputs_(num_outputs), sequence_nr_(g_next_sequence_nr++) {}

Tensors FunctionNode::apply(Tensors&& grads) {
  GNDET_CHECK(fn_ != nullptr, "trying to run backward through the graph a second time, after its saved tensors were "
              "freed; pass retain_graph = true to the first backward()");
  return fn_(grads);
}

AccumulateGrad::AccumulateGrad(const Tensor& leaf) : Node("AccumulateGrad", 1), leaf_(leaf.impl_ptr()) {}

Tensors AccumulateGrad::apply(Tensors&& grads) {
  std::shared_ptr<TensorImpl> impl = leaf_.lock();
  if (!impl || !grads[0].defined()) return {};
  Tensor leaf(impl);
  Tensor g = std::move(grads[0]);
  Tensor current = leaf.grad();
  if (current.defined()) {
    // In place only when the leaf's grad and `current` are its only handles: a grad the caller
    // holds (or a view of it) must not change under them.
    leaf.set_grad(sum_gradients(current, g, 2));
  } else {
    // Keep g itself only when nothing else can see its memory; else copy, so that the gradients
    // of two leaves never share storage (add's backward hands the same tensor to both inputs).
    const bool exclusive = g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.is_contiguous();
    leaf.set_grad(exclusive ? g : g.clone());
  }
  if (impl->autograd && !impl->autograd->post_accumulate_hooks.empty()) {
    const auto hooks = impl->autograd->post_accumulate_hooks;  // a copy: a hook may remove hooks
    for (const auto& [id, hook] : hooks) hook();
  }
  return {};
}

uint64_t add_post_accumulate_hook(const Tensor& leaf, std::function<void()> hook) {
  GNDET_CHECK(leaf.defined() && !leaf.grad_fn() && leaf.requires_grad(),
              "add_post_accumulate_hook: expected a leaf tensor that requires grad");
  static std::atomic<uint64_t> next_id{1};
  const uint64_t id = next_id++;
  meta(leaf).post_accumulate_hooks.emplace_back(id, std::move(hook));
  return id;
}

void remove_post_accumulate_hook(const Tensor& leaf, uint64_t id) {
  if (!leaf.defined() || !leaf.impl().autograd) return;
  auto& hooks = leaf.impl().autograd->post_accumulate_hooks;
  std::erase_if(hooks, [id](const auto& h) { return h.first == id; });
}

Edge gradient_edge(const Tensor& t) {
  if (t.grad_fn()) return {t.grad_fn(), t.output_nr()};
  if (!t.requires_grad()) return {};
  AutogradMeta& m = meta(t);
  if (!m.grad_accumulator) m.grad_accumulator = std::make_shared<AccumulateGrad>(t);
  return {m.grad_accumulator, 0};
}

bool needs_grad(const Tensors& inputs) {
  if (!grad_enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

void record(const OpDef& op, const Tensors& inputs, const Tensors& outputs, FunctionNode::Backward backward) {
  if (!needs_grad(inputs)) {
    if (tracing()) detail::drop_pending_saved();
    return;
  }
  auto node = std::make_shared<FunctionNode>(op.name, static_cast<uint32_t>(outputs.size()), std::move(backward));
  if (tracing()) node->trace = detail::take_trace(outputs);
  node->next_edges.reserve(inputs.size());
  node->input_meta.reserve(inputs.size());
  for (const Tensor& x : inputs) {
    if (x.defined()) {
      node->next_edges.push_back(gradient_edge(x));
      node->input_meta.push_back({x.shape(), x.dtype(), x.device()});
    } else {
      node->next_edges.push_back({});
      node->input_meta.push_back({});
    }
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& y = outputs[i];
    GNDET_CHECK(!y.grad_fn() && !y.requires_grad(), op.name,
                ": internal error, an output already has autograd history (ops must return new tensors)");
    AutogradMeta& m = meta(y);
    m.grad_fn = node;
    m.output_nr = static_cast<uint32_t>(i);
    m.requires_grad = true;
  }
  op.recorded.fetch_add(1, std::memory_order_relaxed);
}

// ---- the engine ----

namespace {

// The order ready nodes run in: leaf accumulators first (so a parameter's gradient is final, and
// its hooks run, as soon as it is complete), then the newest node first.
struct ReadyOrder {
  bool operator()(const std::shared_ptr<Node>& a, const std::shared_ptr<Node>& b) const {
    if (a->runs_first() != b->runs_first()) return b->runs_first();
    return a->sequence_nr() < b->sequence_nr();
  }
};

void check_gradient(const Node& node, size_t j, const Tensor& g) {
  const InputMeta& m = node.input_meta[j];
  GNDET_CHECK(g.shape() == m.shape && g.dtype() == m.dtype && g.device() == m.device, "backward of '", node.name(),
              "' returned a gradient ", describe(g), " for input ", j, " of ", shape_str(m.shape), " ",
              dtype_name(m.dtype), " on ", m.device.str());
}

}  // namespace

void run_backward(const Tensors& roots, const Tensors& grads, bool retain_graph) {
  GNDET_CHECK(roots.size() == grads.size(), "backward: ", roots.size(), " outputs but ", grads.size(), " gradients");
  std::vector<Edge> root_edges;
  Tensors root_grads;
  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& y = roots[i];
    GNDET_CHECK(y.requires_grad(), "backward: the tensor ", describe(y),
                " does not require grad and has no grad_fn (was it computed under NoGradGuard, or from inputs that "
                "do not require grad?)");
    Tensor g = grads[i];
    if (!g.defined()) {
      GNDET_CHECK(y.numel() == 1, "backward: a gradient can be implied only for a one-element output, got ",
                  describe(y), "; pass the gradient explicitly");
      g = ones_like(y);
    }
    GNDET_CHECK(g.shape() == y.shape() && g.dtype() == y.dtype(), "backward: gradient ", describe(g),
                " does not match output ", describe(y));
    root_edges.push_back(gradient_edge(y));
    root_grads.push_back(g);
  }

  // Count the edges leading into every reachable node.
  std::unordered_map<Node*, int> dependencies;
  std::unordered_set<Node*> seen;
  std::vector<Node*> stack;
  for (const Edge& e : root_edges) {
    if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.node) continue;
      ++dependencies[e.node.get()];
      if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }

  std::unordered_map<Node*, Tensors> buffers;
  auto add_gradient = [&](const Edge& e, Tensor g) {
    Tensors& buf = buffers[e.node.get()];
    if (buf.empty()) buf.resize(e.node->num_outputs());
    if (!g.defined()) return;
    Tensor& slot = buf[e.input_nr];
    slot = slot.defined() ? sum_gradients(slot, g, 1) : std::move(g);
  };

  std::priority_queue<std::shared_ptr<Node>, std::vector<std::shared_ptr<Node>>, ReadyOrder> ready;
  {
    NoGradGuard no_grad;
    std::unordered_set<Node*> queued;
    for (size_t i = 0; i < root_edges.size(); ++i) add_gradient(root_edges[i], root_grads[i]);
    for (const Edge& e : root_edges) {
      if (dependencies[e.node.get()] == 0 && queued.insert(e.node.get()).second) ready.push(e.node);
    }
  }

  NoGradGuard no_grad;  // backward formulas do not record a graph (no double backward)
  profiler::BackwardPhase backward_phase;
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.top();
    ready.pop();
    Tensors in = std::move(buffers[node.get()]);
    buffers.erase(node.get());
    bool any = false;
    for (const Tensor& g : in) any = any || g.defined();

    Tensors out;
    if (any) {
      profiler::RangeGuard range(node->name(), profiler::Kind::kBackward, node->trace ? &node->trace->scope : nullptr);
      try {
        out = node->apply(std::move(in));
      } catch (const Error& e) {
        const std::string what = e.what();
        if (what.rfind("backward of", 0) == 0) throw;
        throw Error("backward of '" + std::string(node->name()) + "': " + what);
      }
      GNDET_CHECK(out.size() == node->next_edges.size() || node->next_edges.empty(), "backward of '", node->name(),
                  "' returned ", out.size(), " gradients for ", node->next_edges.size(), " inputs");
    }
    if (!retain_graph) node->release();

    for (size_t j = 0; j < node->next_edges.size(); ++j) {
      const Edge& e = node->next_edges[j];
      if (!e.node) continue;
      Tensor g = any ? out[j] : Tensor();
      if (g.defined()) check_gradient(*node, j, g);
      add_gradient(e, std::move(g));
      if (--dependencies[e.node.get()] == 0) ready.push(e.node);
    }
  }
}

}  // namespace gndet::autograd

namespace gndet {
void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::run_backward({*this}, {grad}, retain_graph);
}
}  // namespace gndet
