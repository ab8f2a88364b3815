// The emulated CUDA device's own checks (docs/emulator.md), each proven by a deliberately wrong
// kernel or host code of tests/cuda/emulator_faults.cu, run in a process of its own (a fault
// leaves the device unusable, as on a GPU): the report must name the check, the kernel, and for a
// memory error the address and the thread. And the schedules: a missing barrier that one schedule
// shows as a wrong result is hidden by another, which is why more than one is offered.
#include <string>
#include <vector>

#include "gndet_config.h"
#include "tensor/backend.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

#if GNDET_CUDA_EMULATED
#include "tensor/cuda/emulator/emulator.h"
#endif

using namespace gndet;

namespace {

// Why the emulator's checks cannot be tested here, or "".
std::string why_no_emulator() {
#if GNDET_CUDA_EMULATED
  return "";
#else
  return cuda::is_built() ? "the CUDA device of this build is real (the checks are the emulated device's)"
                          : "gndet was built without CUDA (-Dcuda=emulate builds the emulated device)";
#endif
}

bool access_checks_built() {
#if GNDET_CUDA_EMULATED
  return cuda::emu::describe().find("without access hooks") == std::string::npos;
#else
  return false;
#endif
}

test::Run fault(const std::string& name, const std::string& env = "") {
  return test::run_shell(env + " " + std::string(GNDET_BUILD_DIR) + "/tests/emulator_faults " + name);
}

void expect_stopped(const std::string& name, const std::vector<std::string>& phrases, const std::string& env = "") {
  const test::Run r = fault(name, env);
  INFO("case " << name << (env.empty() ? "" : " with " + env) << ", exit code " << r.exit_code << ", output:\n"
                << r.output);
  CHECK(r.exit_code == 1);
  for (const std::string& p : phrases) CHECK(r.output.find(p) != std::string::npos);
}

}  // namespace

TEST_CASE("emulated device: memcheck stops out-of-bounds and host-memory accesses, naming kernel, address and thread",
          "[cuda][emulator]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  if (!access_checks_built()) {
    return test::skip("the kernels of this build have no access hooks (AddressSanitizer build: its poisoning of "
                      "device memory stands in for memcheck, with ASan's own reports)");
  }
  // One float past a 1000-float cudaMalloc buffer: i = 1000 is reached by global thread 1000 -
  // 512 (4 blocks of 128 threads stride 512): thread 104 of block 3.
  expect_stopped("oob-write-cudamalloc", {"cudaErrorIllegalAddress", "memcheck: invalid write of 4 bytes at 0x",
                                          "0 bytes past the end of a 4000-byte cudaMalloc allocation",
                                          "kernel write_past_end_cu", "thread (104,0,0) of block (3,0,0)",
                                          "emulator_faults.cu:"});
  // in[-1] of a tensor: the caching allocator's block, not its segment, is the bound.
  expect_stopped("oob-read-tensor", {"memcheck: invalid read of 4 bytes at 0x",
                                     "4 bytes before the start of a 4000-byte tensor block",
                                     "kernel read_before_start_cu", "thread (0,0,0) of block (0,0,0)"});
  expect_stopped("kernel-reads-host", {"memcheck: invalid read of 4 bytes", "host memory", "kernel read_host_memory_cu"});
}

TEST_CASE("emulated device: streams run apart, so a missing record_stream is caught", "[cuda][emulator]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  if (!access_checks_built()) return test::skip("the kernels of this build have no access hooks (AddressSanitizer build)");
  // The main stream's queued poisoning of the freed block runs while the side stream is still
  // busy: the side stream's read then finds a block no tensor owns.
  expect_stopped("missing-record-stream", {"memcheck: invalid read of 4 bytes", "in no live tensor block",
                                           "kernel copy_cu"});
  // With record_stream the block waits for the side stream's work, and the copy is right.
  const test::Run ok = fault("with-record-stream");
  INFO(ok.output);
  CHECK(ok.exit_code == 0);
  CHECK(ok.output.find("copied 2") != std::string::npos);
}

TEST_CASE("emulated device: racecheck stops a shared-memory hazard between barriers", "[cuda][emulator]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  if (!access_checks_built()) return test::skip("the kernels of this build have no access hooks (AddressSanitizer build)");
  // Warp 0 reads the partials before the other warps have written them (warp-greedy order: a
  // write-after-read hazard), or after (reverse order: read-after-write); either is a race.
  for (const std::string schedule : {"greedy", "reverse", "random"}) {
    expect_stopped("shared-race", {"racecheck: ", " hazard on 4 bytes of static shared memory",
                                   "with no __syncthreads in between", "kernel missing_barrier_sum_cu"},
                   "GNDET_EMU_SCHEDULE=" + schedule);
  }
}

TEST_CASE("emulated device: synccheck stops barriers and warp collectives not every thread reaches",
          "[cuda][emulator]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  expect_stopped("divergent-barrier", {"cudaErrorLaunchFailure", "synccheck: ", "__syncthreads",
                                       "kernel divergent_barrier_cu"});
  for (const std::string schedule : {"greedy", "reverse"}) {
    expect_stopped("exit-before-barrier", {"synccheck: ", "exited", "kernel exit_before_barrier_cu"},
                   "GNDET_EMU_SCHEDULE=" + schedule);
  }
  expect_stopped("shuffle-after-exit", {"synccheck: __shfl_xor_sync", "has exited", "kernel shuffle_after_exit_cu"});
}

TEST_CASE("emulated device: GNDET_EMU_DEVICES=0 is a CUDA build on a machine without a GPU", "[cuda][emulator]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  // The no-GPU paths of a CUDA build (errors that name the missing device; tests that skip) keep
  // running where tools/test takes the emulated device.
  const test::Run r = test::run_shell("GNDET_EMU_DEVICES=0 " + std::string(GNDET_BUILD_DIR) +
                                      "/tests/gndet_tests 'device errors are clear without a GPU','[cuda][tensor]'");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("CUDA device: none (no CUDA GPU found)") != std::string::npos);
  CHECK(r.output.find("1 passed, 0 failed, 8 skipped") != std::string::npos);
}

TEST_CASE("emulated device: a block that waits for ever is reported", "[cuda][emulator]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  expect_stopped("hang", {"cudaErrorLaunchTimeout", "hang: thread (0,0,0) of block (0,0,0) has waited in __nanosleep",
                          "kernel wait_forever_cu"},
                 "GNDET_EMU_HANG_SECONDS=1");
}

TEST_CASE("emulated device: launches a GPU refuses are refused, naming the kernel", "[cuda][emulator]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  expect_stopped("launch-too-many-threads", {"cudaErrorInvalidConfiguration", "kernel noop_cu",
                                             "2048 threads per block", "in kernel launch at"});
  expect_stopped("launch-grid-y", {"cudaErrorInvalidConfiguration", "kernel noop_cu", "grid (1,70000,1)",
                                   "grid.y and grid.z at most 65535"});
  expect_stopped("launch-shared-memory", {"cudaErrorInvalidValue", "kernel noop_cu",
                                          "65536 bytes of dynamic shared memory"});
}

TEST_CASE("emulated device: host code that dereferences device memory is stopped", "[cuda][emulator]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  const test::Run r = fault("host-dereferences-device");
  if (r.exit_code == 77) return test::skip("no memory protection keys here: " + r.output);
  INFO(r.output);
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("host code dereferenced a device pointer") != std::string::npos);
  CHECK(r.output.find("read 3 on the host") == std::string::npos);
}

TEST_CASE("emulated device: each schedule hides other missing barriers", "[cuda][emulator]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  // Racecheck off: only the order in which warps run can show the missing barrier. Warp-greedy
  // runs warp 0 to its end before the others write their partials (a wrong sum); reverse order
  // lets every other warp write first (the right sum, by luck).
  const test::Run greedy = fault("missing-barrier-result", "GNDET_EMU_RACECHECK=0 GNDET_EMU_SCHEDULE=greedy");
  const test::Run reverse = fault("missing-barrier-result", "GNDET_EMU_RACECHECK=0 GNDET_EMU_SCHEDULE=reverse");
  INFO(greedy.output << reverse.output);
  REQUIRE(greedy.exit_code == 0);
  REQUIRE(reverse.exit_code == 0);
  CHECK(greedy.output.find("sum without the barrier 32, with it 256") != std::string::npos);
  CHECK(reverse.output.find("sum without the barrier 256, with it 256") != std::string::npos);
}

TEST_CASE("emulated device: the [cuda] kernel cases pass under the reverse and random schedules too",
          "[cuda][emulator][schedules]") {
  if (const std::string why = why_no_emulator(); !why.empty()) return test::skip(why);
  // This run's schedule is the default, warp-greedy; each other one hides other missing barriers
  // and lets other shared-memory races happen in another order. The whole-model, CLI and
  // multi-process cases repeat the kernels of the others at length, and the allocator's are host
  // code: left to this run (the emulated [cuda] cases must stay within 8 minutes in all).
  for (const std::string schedule : {"reverse", "random"}) {
    const test::Run r = test::run_shell("GNDET_EMU_SCHEDULE=" + schedule + " GNDET_EMU_SEED=7 " +
                                        std::string(GNDET_BUILD_DIR) + "/tests/gndet_tests '[cuda]~[emulator]~[model]~[dist]~[cli]~[allocator]'");
    const std::string last = r.output.substr(r.output.rfind('\n', r.output.size() - 2) + 1);
    INFO("schedule " << schedule << ": " << last);
    CHECK(r.exit_code == 0);
    CHECK(last.find(" passed, 0 failed") != std::string::npos);
    if (r.exit_code != 0) FAIL_CHECK(r.output.substr(r.output.size() > 6000 ? r.output.size() - 6000 : 0));
  }
}
