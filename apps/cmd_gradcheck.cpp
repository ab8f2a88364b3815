// gndet gradcheck: runs the registered float64 gradient checks and prints a table.
#include <cstdio>
#include <iostream>
#include <set>

#include "apps/args.h"
#include "apps/commands.h"
#include "autograd/function.h"
#include "autograd/gradcheck.h"

namespace gndet::app {
namespace {

int run_gradcheck(const Args& args) {
  ArgParser p("gndet gradcheck",
              "Checks every differentiable op's backward against central finite differences in float64\n"
              "(eps 1e-6, pass when |analytic - numeric| <= 1e-5 + 1e-3 |numeric|). Exit code 1 on any FAIL.");
  p.flag("--list", "list the ops and their cases without running them")
      .positional("NAME", "run only the cases of these ops", 0, -1)
      .example("gndet gradcheck")
      .example("gndet gradcheck group_norm conv2d")
      .example("gndet gradcheck --list");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  const auto& cases = autograd::gradcheck_cases();
  std::set<std::string> wanted;
  for (const std::string& n : p.list("NAME")) wanted.insert(n);
  std::set<std::string> known;
  for (const auto* op : autograd::registered_ops()) known.insert(op->name);
  for (const auto& c : cases) known.insert(c.op);
  for (const std::string& n : wanted) {
    if (!known.count(n)) throw UsageError("gndet gradcheck: no op named '" + n + "' (gndet gradcheck --list)");
  }

  if (p.has("--list")) {
    for (const auto& c : cases) {
      if (wanted.empty() || wanted.count(c.op)) std::printf("%-16s %s\n", c.op.c_str(), c.name.c_str());
    }
    return 0;
  }

  int passed = 0, failed = 0, skipped = 0;
  std::printf("%-16s %-13s %-13s %-6s %s\n", "op", "max abs err", "max rel err", "result", "case");
  for (const auto& c : cases) {
    if (!wanted.empty() && !wanted.count(c.op)) continue;
    const autograd::GradcheckResult r = c.run();
    const char* verdict = !r.skipped.empty() ? "SKIP" : (r.passed ? "PASS" : "FAIL");
    std::printf("%-16s %-13.3e %-13.3e %-6s %s\n", c.op.c_str(), r.max_abs_error, r.max_rel_error, verdict,
                c.name.c_str());
    if (!r.skipped.empty()) {
      std::printf("%16s skipped: %s\n", "", r.skipped.c_str());
      ++skipped;
    } else if (r.passed) {
      ++passed;
    } else {
      std::printf("%16s %s\n", "", r.error.empty() ? ("worst " + r.worst).c_str() : r.error.c_str());
      ++failed;
    }
  }
  std::printf("\n%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed == 0 ? 0 : 1;
}

}  // namespace

GNDET_COMMAND("gradcheck", "check every op's backward against finite differences (float64)", run_gradcheck);

}  // namespace gndet::app
