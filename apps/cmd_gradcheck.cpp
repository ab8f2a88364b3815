// gndet gradcheck: runs the registered float64 gradient checks and prints a table.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <set>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/experiment.h"
#include "autograd/composite_check.h"
#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "tensor/cuda_api.h"

namespace gndet::app {
namespace {

// float32 on a GPU against float64 on the CPU: sums of thousands of float32 products (rounding
// ~6e-8 each) through a few GN layers, whose 1/std can amplify them, stay well under 1e-3 of the
// largest gradient; a wrong kernel gives errors of order 1. TF32 is off for the comparison: its
// 10-bit operands alone move these gradients by ~1e-3 (the emulated device, which rounds like the
// tensor cores, showed 1.6e-3 on the RoI heads and 0.4 on the whole two-stage loss).
constexpr double kDeviceTolerance = 1e-3;

std::string checked_str(const autograd::CompositeCase& c, const autograd::GradcheckResult& r) {
  std::string s = std::to_string(r.elements) + " of " + std::to_string(r.total_elements);
  if (r.elements < r.total_elements) {
    s += " (sampled, <= " + std::to_string(c.options.max_elements_per_input) + " per tensor)";
  }
  if (r.directions > 0) s += " + " + std::to_string(r.directions) + " random directions (one per tensor)";
  return s;
}

int run_module_checks(const std::set<std::string>& wanted, bool list, const std::string& device_flag) {
  const auto& cases = autograd::composite_cases();
  std::set<std::string> known;
  for (const auto& c : cases) known.insert(c.name);
  for (const std::string& n : wanted) {
    if (!known.count(n)) throw UsageError("gndet gradcheck --modules: no case named '" + n + "' (gndet gradcheck --modules --list)");
  }
  if (list) {
    for (const auto& c : cases) {
      if (wanted.empty() || wanted.count(c.name)) std::printf("%-18s %s\n", c.name.c_str(), c.description.c_str());
    }
    return 0;
  }
  const bool on_device = !device_flag.empty() && device_flag != "cpu";
  const Device device = on_device ? choose_device(device_flag) : Device::cpu();
  if (on_device && device.is_cpu()) throw UsageError("gndet gradcheck --device " + device_flag + ": no GPU here");
  struct Tf32Off {  // for the device comparison, restored after it
    bool prev = cuda::allow_tf32();
    explicit Tf32Off(bool on) {
      if (on) cuda::set_allow_tf32(false);
    }
    ~Tf32Off() { cuda::set_allow_tf32(prev); }
  } tf32_off(on_device);
  if (on_device) {
    std::printf("Gradients of each case in float32 on %s (TF32 off) against float64 on the CPU (same weights,\n"
                "same output weights r); PASS when max|g_dev - g_cpu| <= %.0e max|g_cpu| for every tensor.\n\n",
                describe(device).c_str(), kDeviceTolerance);
  } else {
    std::printf("Whole layers and losses in float64 on the CPU: L = sum_k <y_k, r_k> for fixed random r_k, its\n"
                "gradient by backward against central differences (eps 1e-6) of every checked element,\n"
                "PASS when |analytic - numeric| <= 1e-5 + 1e-3 |numeric|. Tensors larger than the case's limit\n"
                "are checked on a seeded sample of their elements; and every tensor x is also checked along one\n"
                "random direction v through all its elements: <grad, v> = (L(x + eps v) - L(x - eps v)) / (2 eps).\n\n");
  }
  int passed = 0, failed = 0;
  std::printf("%-18s %-12s %-12s %-6s %-7s %s\n", "case", on_device ? "norm. err" : "max abs err",
              on_device ? "" : "max rel err", "result", "time", on_device ? "" : "checked elements");
  for (const auto& c : cases) {
    if (!wanted.empty() && !wanted.count(c.name)) continue;
    const auto t0 = std::chrono::steady_clock::now();
    bool ok;
    std::string detail, checked;
    char errors[64];
    if (on_device) {
      const autograd::DeviceComparison d = autograd::compare_on_device(c, device, kDeviceTolerance);
      ok = d.passed;
      std::snprintf(errors, sizeof errors, "%-12.3e %-12s", d.max_normalized_error, "");
      detail = d.error.empty() ? "worst: " + d.worst : d.error;
    } else {
      const autograd::GradcheckResult r = autograd::run_composite_case(c);
      ok = r.passed;
      std::snprintf(errors, sizeof errors, "%-12.3e %-12.3e", r.max_abs_error, r.max_rel_error);
      detail = !r.error.empty() ? r.error : "worst: " + r.worst;
      checked = checked_str(c, r);
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%-18s %s %-6s %-7.2f %s\n", c.name.c_str(), errors, ok ? "PASS" : "FAIL", secs, checked.c_str());
    std::printf("%18s %s\n", "", c.description.c_str());
    if (!c.note.empty()) std::printf("%18s %s\n", "", c.note.c_str());
    if (!ok) std::printf("%18s %s\n", "", detail.c_str());
    ++(ok ? passed : failed);
  }
  std::printf("\n%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

int run_gradcheck(const Args& args) {
  ArgParser p("gndet gradcheck",
              "Checks every differentiable op's backward against central finite differences in float64\n"
              "(eps 1e-6, pass when |analytic - numeric| <= 1e-5 + 1e-3 |numeric|). Exit code 1 on any FAIL.");
  p.flag("--list", "list the ops and their cases without running them")
      .flag("--modules", "check whole layers and losses instead (conv+GN+ReLU ... the two-stage loss of a tiny "
                         "Mask R-CNN); NAME then selects these cases")
      .option("--device", "DEVICE", "cuda: the ops run in float64 on the GPU (their CUDA kernels) against finite "
              "differences of float64 CPU leaves; with --modules, float32 GPU gradients against the CPU's float64 ones",
              "cpu")
      .positional("NAME", "run only the cases of these ops", 0, -1)
      .example("gndet gradcheck")
      .example("gndet gradcheck --modules")
      .example("gndet gradcheck --modules gn_bottleneck two_stage_loss")
      .example("gndet gradcheck group_norm conv2d")
      .example("gndet gradcheck --device cuda")
      .example("gndet gradcheck --list");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  const auto& cases = autograd::gradcheck_cases();
  std::set<std::string> wanted;
  for (const std::string& n : p.list("NAME")) wanted.insert(n);
  if (p.has("--modules")) return run_module_checks(wanted, p.has("--list"), p.get("--device"));
  const std::string device_flag = p.get("--device");
  const Device device = device_flag.empty() || device_flag == "cpu" ? kCPU : choose_device(device_flag);
  if (device.is_cpu() && !device_flag.empty() && device_flag != "cpu") {
    throw UsageError("gndet gradcheck --device " + device_flag + ": no GPU here");
  }
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
  const autograd::GradcheckDeviceGuard on(device);
  if (!device.is_cpu()) {
    std::printf("Each op runs forward and backward in float64 on %s; its inputs are float64 CPU leaves,\n"
                "copied to the device for every evaluation, and perturbed on the CPU for the finite differences.\n\n",
                describe(device).c_str());
  }
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
