#include "apps/graph_dot.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <set>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "autograd/node.h"
#include "autograd/trace.h"

namespace gndet::app {
namespace {

using autograd::Node;

// A DOT string literal: quotes and backslashes escaped, line breaks as \n.
std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

const char* short_dtype(DType t) {
  switch (t) {
    case kFloat32: return "f32";
    case kFloat64: return "f64";
    case kInt64: return "i64";
    case kInt32: return "i32";
    case kUInt8: return "u8";
    case kBool: return "bool";
    case kBFloat16: return "bf16";
    case kFloat16: return "f16";
  }
  return "?";
}

std::string parent_scope(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? std::string() : name.substr(0, dot);
}

bool within(const std::string& scope, const std::string& prefix) {
  return prefix.empty() || scope == prefix || scope.rfind(prefix + ".", 0) == 0;
}

struct Drawn {
  std::string id, label, scope;
  bool leaf = false, kept = true;
};

}  // namespace

std::string human_bytes(int64_t bytes) {
  char buf[32];
  if (bytes < 1024) std::snprintf(buf, sizeof buf, "%lld B", static_cast<long long>(bytes));
  else if (bytes < 1024 * 1024) std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  else std::snprintf(buf, sizeof buf, "%.2f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

std::string autograd_graph_dot(const Tensors& roots, const DotOptions& opts, GraphSummary* summary) {
  // Every node reachable from the roots, in creation order (the order the forward ran).
  std::vector<Node*> order;
  std::unordered_map<Node*, size_t> index;
  std::vector<Node*> stack;
  for (const Tensor& r : roots) {
    if (r.defined() && r.grad_fn() && !index.count(r.grad_fn().get())) {
      index[r.grad_fn().get()] = 0;
      stack.push_back(r.grad_fn().get());
    }
  }
  GNDET_CHECK(!stack.empty(), "gndet graph: no output has autograd history (is grad mode off?)");
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    order.push_back(n);
    for (const auto& e : n->next_edges) {
      if (e.node && !index.count(e.node.get())) {
        index[e.node.get()] = 0;
        stack.push_back(e.node.get());
      }
    }
  }
  std::sort(order.begin(), order.end(), [](Node* a, Node* b) { return a->sequence_nr() < b->sequence_nr(); });

  GraphSummary sum;
  std::vector<Drawn> drawn(order.size());
  std::set<const void*> storages;
  for (size_t i = 0; i < order.size(); ++i) {
    Node* n = order[i];
    index[n] = i;
    Drawn& d = drawn[i];
    d.id = "n";
    d.id += std::to_string(i);
    std::ostringstream label;
    if (auto* acc = dynamic_cast<autograd::AccumulateGrad*>(n)) {
      d.leaf = true;
      const std::shared_ptr<TensorImpl> leaf = acc->leaf();
      const auto it = leaf ? opts.leaf_names.find(leaf.get()) : opts.leaf_names.end();
      const std::string name = it != opts.leaf_names.end() ? it->second : "leaf";
      d.scope = parent_scope(name);
      label << name.substr(name.rfind('.') == std::string::npos ? 0 : name.rfind('.') + 1);
      if (leaf) label << "\n" << shape_str(Tensor(leaf).shape()) << " " << short_dtype(Tensor(leaf).dtype());
    } else {
      const autograd::NodeTrace* t = n->trace.get();
      d.scope = t ? t->scope : "";
      label << n->name();
      if (t) {
        for (const auto& o : t->outputs) label << "\n" << shape_str(o.shape) << " " << short_dtype(o.dtype);
        if (!t->saved.empty()) {
          int64_t bytes = 0;
          for (const auto& s : t->saved) bytes += s.bytes;
          label << "\nsaved " << t->saved.size() << ": " << human_bytes(bytes);
        }
      }
    }
    d.kept = within(d.scope, opts.only);
    d.label = label.str();
  }
  // Ops outside `only` that touch a kept op are drawn too, dashed and unclustered.
  std::vector<bool> shown(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    if (!drawn[i].kept) continue;
    shown[i] = true;
    for (const auto& e : order[i]->next_edges) {
      if (e.node) shown[index[e.node.get()]] = true;
    }
  }
  for (size_t i = 0; i < order.size(); ++i) {
    if (drawn[i].kept) continue;
    for (const auto& e : order[i]->next_edges) {
      if (e.node && drawn[index[e.node.get()]].kept) shown[i] = true;
    }
  }

  // Clusters: every prefix of every kept scope.
  std::map<std::string, std::vector<size_t>> members;
  std::set<std::string> scopes;
  for (size_t i = 0; i < order.size(); ++i) {
    if (!shown[i]) continue;
    if (!drawn[i].kept) {
      members[""].push_back(i);
      continue;
    }
    members[drawn[i].scope].push_back(i);
    for (std::string s = drawn[i].scope; !s.empty(); s = parent_scope(s)) scopes.insert(s);
    if (drawn[i].leaf) {
      ++sum.leaves;
    } else {
      ++sum.ops;
      if (const autograd::NodeTrace* t = order[i]->trace.get()) {
        sum.saved_tensors += static_cast<int64_t>(t->saved.size());
        for (const auto& s : t->saved) {
          if (storages.insert(s.storage).second) {
            sum.saved_bytes += s.storage_bytes;
            sum.saved_bytes_by_module[drawn[i].scope.substr(0, drawn[i].scope.find('.'))] += s.storage_bytes;
          }
        }
      }
    }
  }

  std::ostringstream dot;
  dot << "digraph autograd {\n  graph [rankdir=TB, fontname=\"Helvetica\", fontsize=11, label=\"" << escape(opts.title)
      << "\", labelloc=t];\n  node [shape=box, style=\"rounded,filled\", fillcolor=\"#eef3fb\", fontname=\"Helvetica\", "
         "fontsize=9];\n  edge [arrowsize=0.6];\n";
  auto emit_node = [&](size_t i, const std::string& indent) {
    const Drawn& d = drawn[i];
    dot << indent << d.id << " [label=\"" << escape(d.label) << "\"";
    if (!d.kept) dot << ", style=\"rounded,dashed\", fillcolor=white, fontcolor=\"#777777\"";
    else if (d.leaf) dot << ", shape=ellipse, fillcolor=\"#fdf1d8\"";
    dot << "];\n";
  };
  int cluster_id = 0;
  std::function<void(const std::string&, const std::string&)> emit_cluster = [&](const std::string& scope,
                                                                                 const std::string& indent) {
    dot << indent << "subgraph cluster_" << cluster_id++ << " {\n"
        << indent << "  label=\"" << escape(scope) << "\"; style=rounded; color=\"#9aa9c2\";\n";
    for (size_t i : members[scope]) emit_node(i, indent + "  ");
    for (const std::string& s : scopes) {
      if (parent_scope(s) == scope && s != scope) emit_cluster(s, indent + "  ");
    }
    dot << indent << "}\n";
  };
  for (size_t i : members[""]) emit_node(i, "  ");
  for (const std::string& s : scopes) {
    if (parent_scope(s).empty()) emit_cluster(s, "  ");
  }
  for (size_t i = 0; i < order.size(); ++i) {
    if (!shown[i]) continue;
    for (const auto& e : order[i]->next_edges) {
      if (!e.node) continue;
      const size_t j = index[e.node.get()];
      if (!shown[j] || (!drawn[i].kept && !drawn[j].kept)) continue;
      dot << "  " << drawn[j].id << " -> " << drawn[i].id << ";\n";  // input -> consumer, as data flowed
      ++sum.edges;
    }
  }
  dot << "}\n";
  if (summary) *summary = sum;
  return dot.str();
}

}  // namespace gndet::app
