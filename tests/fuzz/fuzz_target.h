// One fuzz target = one file tests/fuzz/<name>.cpp holding
//
//   GNDET_FUZZ_TARGET(name) { ... read `input` (a std::string_view) with a gndet reader ... }
//
// plus its name in tests/fuzz/targets.list. The same file builds two ways:
//   - tools/fuzz (clang, -DGNDET_LIBFUZZER): the body becomes LLVMFuzzerTestOneInput;
//   - the Catch2 test binary: the body is registered by name, and tests/fuzz/test_fuzz_replay.cpp
//     runs it on every file of tests/fuzz/corpus/<name>/ and tests/fuzz/reproducers/<name>/.
// A gndet::Error is the expected answer to bad input and is swallowed; anything else (another
// exception, GNDET_FUZZ_ASSERT, a crash, a sanitizer report) is a finding.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "tensor/error.h"

namespace gndet::fuzz {

using Body = void (*)(std::string_view input);

// A broken invariant: not a gndet::Error, so it is never mistaken for a clean rejection.
struct Finding : std::logic_error {
  using std::logic_error::logic_error;
};

inline std::map<std::string, Body>& registry() {
  static std::map<std::string, Body> targets;
  return targets;
}
inline bool register_target(const char* name, Body body) { return registry().emplace(name, body).second; }

inline void run_one(Body body, std::string_view input) {
  try {
    body(input);
  } catch (const Error&) {
    // a clear rejection: what bad input should get
  }
}

// Writes `bytes` to `<this process's fuzz folder>/<name>` and returns the path: for readers that
// take a file name. The folder is private to the process, so relative paths in the input (a
// config's _base_) resolve next to it and concurrent runs do not collide.
std::string write_input_file(std::string_view bytes, const std::string& name);

}  // namespace gndet::fuzz

#define GNDET_FUZZ_ASSERT(cond)                                                                  \
  do {                                                                                           \
    if (!(cond)) throw ::gndet::fuzz::Finding(std::string("fuzz invariant failed: ") + #cond);  \
  } while (0)

#ifdef GNDET_LIBFUZZER
#define GNDET_FUZZ_ENTRY(name)                                                              \
  extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {                 \
    ::gndet::fuzz::run_one(gndet_fuzz_##name, {reinterpret_cast<const char*>(data), size}); \
    return 0;                                                                               \
  }
#else
#define GNDET_FUZZ_ENTRY(name) \
  [[maybe_unused]] static const bool gndet_fuzz_registered_##name = ::gndet::fuzz::register_target(#name, gndet_fuzz_##name);
#endif

#define GNDET_FUZZ_TARGET(name)                              \
  static void gndet_fuzz_##name(std::string_view input);     \
  GNDET_FUZZ_ENTRY(name)                                     \
  static void gndet_fuzz_##name([[maybe_unused]] std::string_view input)
