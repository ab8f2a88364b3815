// Run-time switches of the CUDA op kernels, for parity tests and benchmarks. Each starts from an
// environment variable read at first use, so a whole run can be steered without code:
//
//   GNDET_CONV_BACKEND=auto|cudnn|gemm     auto: cuDNN when built with it, the own im2col + cuBLAS
//                                          path for calls cuDNN declines (ops/cuda/conv_cuda.h)
//                                          and in builds without it; cudnn: the same, but an error
//                                          in a build without cuDNN; gemm: always the own path
//   GNDET_CUDNN_DETERMINISTIC=0|1          only cuDNN algorithms whose results are reproducible
//   GNDET_CUDNN_BENCHMARK=0|1              choose cuDNN algorithms by timing them (cudnnFind*Ex)
//                                          instead of cuDNN's heuristics: faster kernels, but a
//                                          search per new shape (detection heads see many)
//   GNDET_GROUP_NORM_ALGO=auto|warp|fused|two_pass   the GroupNorm kernel family
//                                          (ops/cuda/group_norm_common.cuh); a forced choice that
//                                          cannot run a shape falls back to auto for it
//
// Plain C++ (ops/cuda/tuning.cpp), compiled in every build so that tests can set the switches
// unconditionally; without CUDA nothing reads them.
#pragma once

#include <cstdint>

namespace gndet::cuda {

enum class ConvBackend { Auto, Cudnn, Gemm };
void set_conv_backend(ConvBackend backend);
ConvBackend conv_backend();

void set_cudnn_deterministic(bool on);
bool cudnn_deterministic();

void set_cudnn_benchmark(bool on);
bool cudnn_benchmark();

// Calls of the convolution kernels served by cuDNN and by the GEMM path since start-up (tests
// check that the path they mean to exercise ran); note_conv_call is for ops/cuda/conv.cu.
struct ConvCounts {
  int64_t cudnn = 0, gemm = 0;
};
ConvCounts conv_counts();
void note_conv_call(bool cudnn);

enum class GroupNormAlgo { Auto, Warp, Fused, TwoPass };
void set_group_norm_algo(GroupNormAlgo algo);
GroupNormAlgo group_norm_algo();

// Sets a switch for its scope and restores the previous value (tests).
template <class T, T (*Get)(), void (*Set)(T)>
class TuningGuard {
 public:
  explicit TuningGuard(T value) : prev_(Get()) { Set(value); }
  ~TuningGuard() { Set(prev_); }
  TuningGuard(const TuningGuard&) = delete;
  TuningGuard& operator=(const TuningGuard&) = delete;

 private:
  T prev_;
};
using ConvBackendGuard = TuningGuard<ConvBackend, conv_backend, set_conv_backend>;
using CudnnDeterministicGuard = TuningGuard<bool, cudnn_deterministic, set_cudnn_deterministic>;
using CudnnBenchmarkGuard = TuningGuard<bool, cudnn_benchmark, set_cudnn_benchmark>;
using GroupNormAlgoGuard = TuningGuard<GroupNormAlgo, group_norm_algo, set_group_norm_algo>;

}  // namespace gndet::cuda
