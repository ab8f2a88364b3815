// The traced autograd graph (autograd/trace.h) and its DOT rendering (apps/graph_dot.h), and
// `gndet graph` end to end on the tiny test config.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "apps/graph_dot.h"
#include "autograd/trace.h"
#include "nn/conv_module.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

using namespace gndet;

TEST_CASE("a trace records output shapes and saved bytes, and nothing without a TraceGuard", "[apps][graph]") {
  Tensor x = from_data<double>({1, 2, 3, 4, 5, 6}, {2, 3}).set_requires_grad(true);
  {
    const Tensor untraced = exp(x * x);
    CHECK(untraced.grad_fn()->trace == nullptr);
  }
  autograd::TraceGuard trace;
  const Tensor y = exp(x * x);  // mul saves x twice (one buffer of 48 bytes), exp saves its output (48)
  const auto* t = y.grad_fn()->trace.get();
  REQUIRE(t != nullptr);
  REQUIRE(t->outputs.size() == 1);
  CHECK(t->outputs[0].shape == Shape{2, 3});
  REQUIRE(t->saved.size() == 1);
  CHECK(t->saved[0].bytes == 48);
  const auto* mul_trace = y.grad_fn()->next_edges[0].node->trace.get();
  REQUIRE(mul_trace != nullptr);
  CHECK(mul_trace->saved.size() == 2);
  app::GraphSummary s;
  app::DotOptions o;
  o.leaf_names.emplace(&x.impl(), std::string("x"));  // not operator=("x"): GCC 12 -Wrestrict false positive
  const std::string dot = app::autograd_graph_dot({y}, o, &s);
  CHECK(s.ops == 2);
  CHECK(s.leaves == 1);
  CHECK(s.edges == 3);  // x -> mul twice, mul -> exp
  CHECK(s.saved_tensors == 3);
  CHECK(s.saved_bytes == 96);  // distinct buffers: x and exp's output
  CHECK(dot.find("exp\\n(2, 3) f64\\nsaved 1: 48 B") != std::string::npos);
}

TEST_CASE("ops are clustered by the module that recorded them", "[apps][graph]") {
  nn::ConvModuleOptions o;
  o.conv = {.in_channels = 2, .out_channels = 4, .kernel = {3, 3}, .padding = {1, 1}};
  o.norm = {.type = nn::NormType::GroupNorm, .num_groups = 2};
  Generator gen(1);
  nn::ConvModule block(o, gen);
  const Tensor x = randn({1, 2, 5, 5}, gen);
  autograd::TraceGuard trace;
  nn::ModuleNames names(block);
  const Tensor y = block.forward(x);
  app::DotOptions d;
  for (const auto& [name, p] : block.named_parameters()) d.leaf_names[&p.impl()] = name;
  app::GraphSummary s;
  const std::string dot = app::autograd_graph_dot({y}, d, &s);
  CHECK(s.ops == 2);     // conv2d, group_norm_relu (the ReLU fused into GroupNorm on the CPU)
  CHECK(s.leaves == 3);  // conv.weight, gn.weight, gn.bias
  CHECK(dot.find("label=\"conv\"") != std::string::npos);
  CHECK(dot.find("label=\"gn\"") != std::string::npos);
  CHECK(dot.find("group_norm_relu\\n(1, 4, 5, 5) f32") != std::string::npos);
  // --only gn: the conv shows as a dashed neighbour.
  d.only = "gn";
  const std::string only = app::autograd_graph_dot({y}, d, &s);
  CHECK(s.ops == 1);
  CHECK(only.find("dashed") != std::string::npos);
  CHECK(only.find("label=\"conv\"") == std::string::npos);
}

TEST_CASE("gndet graph writes the graph of a training step of the tiny model", "[apps][graph][cli]") {
  test::TempDir dir("graph");
  const std::string out = dir.str() + "/step.dot";
  const test::Run r = test::run_gndet("graph " + std::string(GNDET_SOURCE_DIR) +
                                      "/configs/tests/mask-rcnn_tiny_gn.json --size 64 --no-svg --out " + out);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("saved for backward") != std::string::npos);
  std::ifstream in(out);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string dot = ss.str();
  for (const char* s : {"label=\"backbone.layer1.0\"", "label=\"neck\"", "label=\"rpn_head\"",
                        "label=\"roi_head.bbox_head\"", "label=\"roi_head.mask_head\"", "roi_align",
                        "binary_cross_entropy_with_logits", "group_norm"}) {
    INFO(s);
    CHECK(dot.find(s) != std::string::npos);
  }
  const test::Run bad = test::run_gndet("graph " + std::string(GNDET_SOURCE_DIR) +
                                        "/configs/tests/mask-rcnn_tiny_gn.json --only backbone.nope --out " + out);
  CHECK(bad.exit_code != 0);
  CHECK(bad.output.find("no module 'backbone.nope'") != std::string::npos);
}
