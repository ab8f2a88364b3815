// Test runner: Catch2's session plus a listener that counts test cases, so that the last line
// printed is "N passed, N failed, N skipped" (the format CI reads).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

#include "gndet_config.h"
#include "tensor/backend.h"
#include "tests/support.h"

#if GNDET_CUDA_EMULATED
#include "tensor/cuda/emulator/emulator.h"
#endif

namespace gndet::test {
namespace {

std::map<std::string, std::string>& skipped_names() {  // test case -> why
  static std::map<std::string, std::string> names;
  return names;
}

struct Counts {
  int passed = 0, failed = 0, skipped = 0;
};
Counts& counts() {
  static Counts c;
  return c;
}

}  // namespace

struct SummaryListener : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseEnded(const Catch::TestCaseStats& stats) override {
    const bool failed = stats.totals.assertions.failed > 0 || stats.totals.testCases.failed > 0;
    if (failed) {
      ++counts().failed;
    } else if (skipped_names().count(stats.testInfo.name)) {
      ++counts().skipped;
    } else {
      ++counts().passed;
    }
  }
};

void skip(const std::string& reason) {
  const std::string name = Catch::getResultCapture().getCurrentTestName();
  skipped_names().emplace(name, reason);
  std::printf("SKIPPED: %s: %s\n", name.c_str(), reason.c_str());
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  return max_abs_diff(a.to_vector<double>(), b.to_vector<double>());
}

double max_abs_diff(const std::vector<double>& x, const std::vector<double>& y) {
  REQUIRE(x.size() == y.size());
  double m = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double d = std::abs(x[i] - y[i]);
    if (std::isnan(d)) return INFINITY;
    m = std::max(m, d);
  }
  return m;
}

void poison(Tensor& t) {
  if (is_floating(t.dtype()) || is_reduced_float(t.dtype())) {
    t.fill_(NAN);
  } else {
    t.fill_(0x5A);
  }
}

}  // namespace gndet::test

using gndet::test::SummaryListener;
CATCH_REGISTER_LISTENER(SummaryListener)

int main(int argc, char** argv) {
  Catch::Session session;
  const int rc = session.applyCommandLine(argc, argv);
  if (rc != 0) return rc;
  // Which device the [cuda] cases run on.
  if (gndet::cuda::is_available()) {
#if GNDET_CUDA_EMULATED
    std::printf("CUDA device: %s\n", gndet::cuda::emu::describe().c_str());
#else
    std::printf("CUDA device: %s\n", gndet::describe(gndet::Device::cuda(0)).c_str());
#endif
  } else {
    std::printf("CUDA device: none (%s): the [cuda] cases skip\n", gndet::cuda::unavailable_reason().c_str());
  }
  const int failed = session.run();
  const auto& c = gndet::test::counts();
  if (!gndet::test::skipped_names().empty()) {
    std::printf("skipped test cases:\n");
    for (const auto& [name, why] : gndet::test::skipped_names()) std::printf("  %s: %s\n", name.c_str(), why.c_str());
  }
  std::printf("%d passed, %d failed, %d skipped\n", c.passed, c.failed, c.skipped);
  return failed == 0 && c.failed == 0 ? 0 : 1;
}
