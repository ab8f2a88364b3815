// The switches of ops/cuda/tuning.h: atomics initialised from the environment on first use.
#include "ops/cuda/tuning.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>

#include "tensor/error.h"

namespace gndet::cuda {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : nullptr;
}

bool env_flag(const char* name) {
  const char* v = env(name);
  if (v == nullptr) return false;
  if (std::strcmp(v, "1") == 0 || std::strcmp(v, "true") == 0 || std::strcmp(v, "on") == 0) return true;
  if (std::strcmp(v, "0") == 0 || std::strcmp(v, "false") == 0 || std::strcmp(v, "off") == 0) return false;
  GNDET_FAIL("environment variable ", name, "=", v, ": expected 0 or 1");
}

int env_choice(const char* name, std::initializer_list<const char*> choices) {
  const char* v = env(name);
  if (v == nullptr) return 0;
  int i = 0;
  std::string all;
  for (const char* c : choices) {
    if (std::strcmp(v, c) == 0) return i;
    if (i > 0) all += '|';
    all += c;
    ++i;
  }
  GNDET_FAIL("environment variable ", name, "=", v, ": expected one of ", all);
}

std::atomic<int>& conv_backend_slot() {
  static std::atomic<int> v{env_choice("GNDET_CONV_BACKEND", {"auto", "cudnn", "gemm"})};
  return v;
}
std::atomic<bool>& deterministic_slot() {
  static std::atomic<bool> v{env_flag("GNDET_CUDNN_DETERMINISTIC")};
  return v;
}
std::atomic<bool>& benchmark_slot() {
  static std::atomic<bool> v{env_flag("GNDET_CUDNN_BENCHMARK")};
  return v;
}
std::atomic<int>& group_norm_slot() {
  static std::atomic<int> v{env_choice("GNDET_GROUP_NORM_ALGO", {"auto", "warp", "fused", "two_pass"})};
  return v;
}

std::atomic<int64_t> g_cudnn_calls{0}, g_gemm_calls{0};

}  // namespace

ConvCounts conv_counts() { return {g_cudnn_calls.load(), g_gemm_calls.load()}; }
void note_conv_call(bool cudnn) { (cudnn ? g_cudnn_calls : g_gemm_calls).fetch_add(1); }

void set_conv_backend(ConvBackend backend) { conv_backend_slot() = static_cast<int>(backend); }
ConvBackend conv_backend() { return static_cast<ConvBackend>(conv_backend_slot().load()); }

void set_cudnn_deterministic(bool on) { deterministic_slot() = on; }
bool cudnn_deterministic() { return deterministic_slot().load(); }

void set_cudnn_benchmark(bool on) { benchmark_slot() = on; }
bool cudnn_benchmark() { return benchmark_slot().load(); }

void set_group_norm_algo(GroupNormAlgo algo) { group_norm_slot() = static_cast<int>(algo); }
GroupNormAlgo group_norm_algo() { return static_cast<GroupNormAlgo>(group_norm_slot().load()); }

}  // namespace gndet::cuda
