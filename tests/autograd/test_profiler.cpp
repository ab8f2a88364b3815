// The profiler: kernel, backward and module ranges nest with consistent self / total times, the
// announced FLOPs and the allocations land on the right kernel, and the reports are well formed.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "autograd/profiler.h"
#include "autograd/trace.h"
#include "ops/conv.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;
namespace prof = gndet::autograd::profiler;

TEST_CASE("profiler: kernels, backward nodes and scopes nest; FLOPs and bytes land on their kernel", "[autograd][profiler]") {
  Generator gen(3);
  Tensor x = randn({2, 3, 10, 12}, gen).set_requires_grad();
  Tensor w = randn({4, 3, 3, 3}, gen).set_requires_grad();
  std::vector<prof::Range> ranges;
  {
    prof::Profiler profiler;
    autograd::TraceGuard trace;
    profiler.step_begin("step 1");
    {
      autograd::ScopeGuard scope("backbone.layer1.0.conv1");  // what nn::ModuleScope pushes
      Tensor y = conv2d(x, w, Tensor(), {1, 1}, {1, 1}, {1, 1}, 1);
      sum(y).backward();
    }
    profiler.step_end();
    ranges = profiler.ranges();
  }
  // Nothing is recorded once the profiler is gone.
  (void)conv2d(x, w, Tensor(), {1, 1}, {1, 1}, {1, 1}, 1);

  const prof::Range* forward = nullptr;
  const prof::Range* step = nullptr;
  const prof::Range* module = nullptr;
  int backward_nodes = 0, backward_conv_kernels = 0;
  for (const prof::Range& r : ranges) {
    INFO(r.name);
    CHECK(r.self_ns <= r.total_ns);
    CHECK(r.self_ns >= 0);
    if (r.name == "conv2d_forward_kernel") forward = &r;
    if (r.kind == prof::Kind::kStep) step = &r;
    if (r.kind == prof::Kind::kModule) module = &r;
    if (r.kind == prof::Kind::kBackward) {
      ++backward_nodes;
      CHECK(r.phase == prof::Phase::kBackward);
      if (r.name == std::string("conv2d")) CHECK(r.scope == "backbone.layer1.0.conv1");  // the node's own module
    }
    if (r.kind == prof::Kind::kKernel && r.phase == prof::Phase::kBackward &&
        r.name.find("conv2d_backward") != std::string::npos) {
      ++backward_conv_kernels;
      CHECK(r.flops == 2.0 * 2 * 4 * 10 * 12 * 27);  // dy elements x (C_in/groups x kh x kw) x 2
      CHECK(r.depth > 0);                            // inside its backward node
    }
  }
  REQUIRE(forward != nullptr);
  REQUIRE(step != nullptr);
  REQUIRE(module != nullptr);
  CHECK(forward->phase == prof::Phase::kForward);
  CHECK(forward->scope == "backbone.layer1.0.conv1");
  CHECK(forward->flops == 2.0 * (2 * 4 * 10 * 12) * (3 * 3 * 3));  // output elements x MACs each x 2
  CHECK(forward->bytes >= 2 * 4 * 10 * 12 * 4);  // its output, allocated by the op just before the call
  CHECK(backward_nodes >= 2);                     // sum and conv2d
  CHECK(backward_conv_kernels == 2);              // input and weight gradients
  // The step holds everything: its total is at least the sum of the self times inside it.
  int64_t inside = 0;
  for (const prof::Range& r : ranges) inside += r.kind == prof::Kind::kStep ? 0 : r.self_ns;
  CHECK(inside <= step->total_ns);

  const std::string table = prof::summary_table(ranges);
  CHECK(table.find("conv2d_forward_kernel") != std::string::npos);
  CHECK(table.find("backward: conv2d") != std::string::npos);
  CHECK(table.find("backbone.layer1") != std::string::npos);  // the module table groups by two parts
  const nlohmann::json trace = nlohmann::json::parse(prof::chrome_trace_json(ranges));
  size_t complete = 0;
  for (const auto& e : trace.at("traceEvents")) complete += e.at("ph") == "X";
  CHECK(complete == ranges.size());
}

TEST_CASE("profiler: one at a time", "[autograd][profiler]") {
  prof::Profiler a;
  CHECK_THROWS_WITH(prof::Profiler(), Catch::Contains("already running"));
}
