// The op registry: every differentiable op has a gradcheck case, every case passes, and running
// the cases proves each op attached a backward (STYLE.md, "what we take" 6).
#include <map>
#include <set>

#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "tests/support.h"

using namespace gndet;

TEST_CASE("every registered op has a gradcheck case and every case names an op", "[ops][registry]") {
  std::set<std::string> with_case;
  for (const auto& c : autograd::gradcheck_cases()) with_case.insert(c.op);
  std::set<std::string> ops;
  for (const auto* op : autograd::registered_ops()) {
    if (std::string(op->name).rfind("test_", 0) == 0) continue;  // ops defined inside tests
    ops.insert(op->name);
    INFO("op " << op->name);
    CHECK(with_case.count(op->name) == 1);
  }
  for (const std::string& name : with_case) {
    INFO("gradcheck case for unknown op " << name);
    CHECK(ops.count(name) == 1);
  }
  CHECK(ops.size() >= 40);
}

TEST_CASE("all gradcheck cases pass in float64, and each op recorded its backward", "[ops][registry][gradcheck]") {
  std::map<std::string, bool> ran;  // op -> some case ran (not skipped)
  for (const auto& c : autograd::gradcheck_cases()) {
    const autograd::GradcheckResult r = c.run();
    INFO(c.op << ": " << c.name << "\n  " << r.error << r.worst);
    if (!r.skipped.empty()) {
      ran.emplace(c.op, false);
      continue;
    }
    ran[c.op] = true;
    CHECK(r.passed);
    CHECK(r.elements > 0);
  }
  for (const auto* op : autograd::registered_ops()) {
    if (std::string(op->name).rfind("test_", 0) == 0 || !ran[op->name]) continue;
    INFO("op " << op->name << " never attached a backward while its cases ran");
    CHECK(op->recorded.load() > 0);
  }
}
