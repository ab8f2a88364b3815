// The autograd graph as Graphviz DOT, for `gndet graph` (and the figure in docs/internals.md).
//
// Nodes are the ops backward will run (FunctionNodes) and the parameters' gradient sinks
// (AccumulateGrad, labelled with the parameter's name); arrows point the way data flowed forward
// (backward walks them in reverse). Built under an autograd::TraceGuard, each op shows its output
// shapes and dtypes and the tensors it saved for backward, and sits in nested clusters by module
// name ("backbone" > "backbone.layer1" > "backbone.layer1.0" > ...).
#pragma once

#include <map>
#include <string>

#include "tensor/tensor.h"

namespace gndet::app {

struct DotOptions {
  std::map<const TensorImpl*, std::string> leaf_names;  // parameter -> "backbone.conv1.weight"
  std::string only;   // keep ops of this module (and below) only; their neighbours show dashed
  std::string title;  // graph label
};

struct GraphSummary {
  int64_t ops = 0;            // FunctionNodes drawn
  int64_t leaves = 0;         // AccumulateGrad nodes drawn
  int64_t edges = 0;
  int64_t saved_tensors = 0;  // Saved entries of the drawn ops
  int64_t saved_bytes = 0;    // their distinct storages' sizes: the memory backward keeps alive
  std::map<std::string, int64_t> saved_bytes_by_module;  // by first name component ("" = outside any module)
};

// Walks the graph behind `roots` (tensors with a grad_fn). Throws when none has one.
std::string autograd_graph_dot(const Tensors& roots, const DotOptions& options, GraphSummary* summary);

// "1.50 MiB", "320 B".
std::string human_bytes(int64_t bytes);

}  // namespace gndet::app
