// CPU layer benchmark: conv2d (forward, input gradient, weight gradient) in GFLOP/s on
// ResNet-50 / Mask R-CNN layer shapes, and GroupNorm forward / backward in GB/s, each printed
// with a same-run reference so that the numbers mean something on any machine:
//   GFLOP/s  against a large square Eigen GEMM (1024^3: what our conv GEMMs could reach),
//   GB/s     against a plain memcpy of the same bytes, split over the same OpenMP threads,
// each measured in rounds interleaved with the layer it is the reference for, so that both see
// the same machine conditions (other processes, clock frequency).
// Bytes count each input read once and each output written once (GN forward: x in, y out;
// backward: dy and x in, dx out; the (N, G) statistics and (C) parameters are negligible).
//
//   build-layers/bench/cpu_layers [--quick] [--conv-only | --gn-only]
// With -march=native, GCC 12 warns that its own AVX-512 intrinsics use '__Y' uninitialised where
// Eigen's GEMM kernels are inlined into this file: a known false positive (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "tensor/grad_mode.h"
#include "ops/conv.h"
#include "ops/norm.h"
#include "tensor/factory.h"
#include "tensor/random.h"

using namespace gndet;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Best wall time of each function over interleaved rounds (f0, f1, ..., f0, f1, ...): at least
// `min_rounds` rounds, and more until `budget_s` has passed.
std::vector<double> best_times(const std::vector<std::function<void()>>& fns, int min_rounds, double budget_s) {
  for (const auto& fn : fns) fn();  // warm-up: page faults, caches
  std::vector<double> best(fns.size(), 1e30);
  const double start = now_s();
  for (int r = 0; (r < min_rounds || now_s() - start < budget_s) && r < 1000; ++r) {
    for (size_t i = 0; i < fns.size(); ++i) {
      const double t0 = now_s();
      fns[i]();
      best[i] = std::min(best[i], now_s() - t0);
    }
  }
  return best;
}

// A large square float GEMM through Eigen (its own OpenMP parallelism): the GFLOP/s reference.
struct PeakGemm {
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  explicit PeakGemm(int64_t size) : n(size), a(Mat::Random(n, n)), b(Mat::Random(n, n)), c(n, n) {}
  void run() { c.noalias() = a * b; }
  double flops() const { return 2.0 * static_cast<double>(n * n * n); }
  int64_t n;
  Mat a, b, c;
};

// Copies a buffer, split over the OpenMP threads: the GB/s reference.
struct ParallelCopy {
  explicit ParallelCopy(size_t bytes) : src(bytes, 1), dst(bytes, 0) {}
  void run() {
    const int threads = omp_get_max_threads();
    const size_t bytes = src.size();
#pragma omp parallel for schedule(static)
    for (int i = 0; i < threads; ++i) {
      const size_t lo = bytes * i / threads, hi = bytes * (i + 1) / threads;
      std::memcpy(dst.data() + lo, src.data() + lo, hi - lo);
    }
  }
  double bytes_moved() const { return 2.0 * static_cast<double>(src.size()); }  // read + write
  std::vector<char> src, dst;
};

struct ConvShape {
  const char* name;
  int64_t N, C_in, H, W, C_out, k, stride, pad, groups;
};

void bench_conv(const ConvShape& s, PeakGemm& peak, double budget_s) {
  Generator gen(1);
  const Tensor x = randn({s.N, s.C_in, s.H, s.W}, gen);
  const Tensor w = randn({s.C_out, s.C_in / s.groups, s.k, s.k}, gen);
  const Conv2dParams p{{s.stride, s.stride}, {s.pad, s.pad}, {1, 1}, s.groups};
  const Tensor y = conv2d(x, w, Tensor(), p.stride, p.padding, p.dilation, p.groups);
  const Tensor dy = randn(y.shape(), gen);
  Tensor dx = empty(x.shape()), dw = empty(w.shape());
  const double flops = 2.0 * static_cast<double>(y.numel()) * static_cast<double>(s.C_in / s.groups * s.k * s.k);
  const std::vector<double> t = best_times(
      {[&] { peak.run(); }, [&] { conv2d(x, w, Tensor(), p.stride, p.padding, p.dilation, p.groups); },
       [&] { conv2d_backward_input_kernel(kCPU, dx, dy, w, p); },
       [&] { conv2d_backward_weight_kernel(kCPU, dw, dy, x, p); }},
      3, budget_s);
  const double ref = peak.flops() / t[0] / 1e9;
  std::printf("%-36s %6.2f", s.name, flops / 1e9);
  for (int i = 1; i <= 3; ++i) {
    const double g = flops / t[i] / 1e9;
    std::printf("  %6.1f (%4.2f)", g, g / ref);
  }
  std::printf("  %6.1f\n", ref);
}

void bench_group_norm(const Shape& shape, int64_t groups, double budget_s) {
  Generator gen(2);
  const Tensor x = randn(shape, gen), weight = randn({shape[1]}, gen), bias = randn({shape[1]}, gen);
  const int64_t N = shape[0], C = shape[1], S = x.numel() / (N * C);
  const Tensor x3 = x.reshape({N, C, S});
  Tensor y = empty({N, C, S}), mean = empty({N, groups}), rstd = empty({N, groups});
  Tensor dx = empty({N, C, S}), dweight = empty({C}), dbias = empty({C});
  const Tensor dy = randn({N, C, S}, gen);
  const double bytes = static_cast<double>(x.numel()) * sizeof(float);
  ParallelCopy copy(static_cast<size_t>(bytes));
  const std::vector<double> t = best_times(
      {[&] { copy.run(); }, [&] { group_norm_kernel(kCPU, y, mean, rstd, x3, weight, bias, groups, 1e-5); },
       [&] { group_norm_backward_kernel(kCPU, dx, dweight, dbias, dy, x3, mean, rstd, weight, groups); }},
      5, budget_s);
  const double copy_gbs = copy.bytes_moved() / t[0] / 1e9;
  const double fwd = 2.0 * bytes / t[1] / 1e9, bwd = 3.0 * bytes / t[2] / 1e9;
  std::printf("%-36s %6.1f  %6.1f (%4.2f)  %6.1f (%4.2f)  %6.1f\n",
              (shape_str(shape) + " G " + std::to_string(groups)).c_str(), bytes / 1e6, fwd, fwd / copy_gbs, bwd,
              bwd / copy_gbs, copy_gbs);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, conv = true, gn = true, demo = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    quick = quick || a == "--quick";
    if (a == "--conv-only") gn = false;
    if (a == "--gn-only") conv = false;
    demo = demo || a == "--demo";
  }
  const double budget = quick ? 0.1 : 1.0;  // seconds of rounds per shape
  autograd::NoGradGuard no_grad;
  std::printf("gndet CPU layers, %d OpenMP threads, Eigen SIMD: %s\n", omp_get_max_threads(),
              Eigen::SimdInstructionSetsInUse());

  if (conv) {
    PeakGemm peak(1024);
    std::printf("\n%-36s %6s  %14s  %14s  %14s  %6s\n", "conv2d float32 (N,Cin,H,W)->Cout", "GFLOP", "forward",
                "grad input", "grad weight", "GEMM");
    std::printf("%-36s %6s  %14s  %14s  %14s  %6s\n", "", "", "GFLOP/s (xGEMM)", "GFLOP/s (xGEMM)", "GFLOP/s (xGEMM)",
                "GFLOP/s");
    const ConvShape convs[] = {
        {"stem 7x7/2 (2,3,224,224)->64", 2, 3, 224, 224, 64, 7, 2, 3, 1},
        {"layer1 3x3 (2,64,56,56)->64", 2, 64, 56, 56, 64, 3, 1, 1, 1},
        {"layer1 1x1 (2,64,56,56)->256", 2, 64, 56, 56, 256, 1, 1, 0, 1},
        {"layer2 3x3/2 (2,128,56,56)->128", 2, 128, 56, 56, 128, 3, 2, 1, 1},
        {"layer3 3x3 (2,256,14,14)->256", 2, 256, 14, 14, 256, 3, 1, 1, 1},
        {"layer4 1x1 (2,2048,7,7)->512", 2, 2048, 7, 7, 512, 1, 1, 0, 1},
        {"fpn 3x3 (2,256,56,56)->256", 2, 256, 56, 56, 256, 3, 1, 1, 1},
        {"layer3 3x3 (1,256,50,84)->256", 1, 256, 50, 84, 256, 3, 1, 1, 1},
        {"layer4 3x3 (1,512,25,42)->512", 1, 512, 25, 42, 512, 3, 1, 1, 1},
        {"rpn 3x3 P6 (1,256,13,21)->256", 1, 256, 13, 21, 256, 3, 1, 1, 1},
        {"box head 3x3 (512,256,7,7)->256", 512, 256, 7, 7, 256, 3, 1, 1, 1},
        {"mask head 3x3 (64,256,14,14)->256", 64, 256, 14, 14, 256, 3, 1, 1, 1},
        {"resnext 3x3 g32 (2,128,56,56)->128", 2, 128, 56, 56, 128, 3, 1, 1, 32},
    };
    // The demo's model (configs/shapes: ResNet-18 at 1/4 width, 4 images of 128 x 128, 32-channel
    // heads on 4 x 64 sampled RoIs): small convolutions, where overheads and threading decide.
    const ConvShape demo_convs[] = {
        {"demo stem 7x7/2 (4,3,128,128)->16", 4, 3, 128, 128, 16, 7, 2, 3, 1},
        {"demo layer1 3x3 (4,16,32,32)->16", 4, 16, 32, 32, 16, 3, 1, 1, 1},
        {"demo layer3 3x3 (4,64,8,8)->64", 4, 64, 8, 8, 64, 3, 1, 1, 1},
        {"demo fpn/rpn 3x3 (4,32,32,32)->32", 4, 32, 32, 32, 32, 3, 1, 1, 1},
        {"demo box head 3x3 (256,32,7,7)->32", 256, 32, 7, 7, 32, 3, 1, 1, 1},
        {"demo mask head 3x3 (64,32,14,14)->32", 64, 32, 14, 14, 32, 3, 1, 1, 1},
    };
    if (demo) {
      for (const ConvShape& s : demo_convs) bench_conv(s, peak, budget);
    } else {
      for (const ConvShape& s : convs) bench_conv(s, peak, budget);
    }
  }
  if (gn && !demo) {
    std::printf("\n%-36s %6s  %14s  %14s  %6s\n", "group_norm float32", "MB", "forward", "backward", "memcpy");
    std::printf("%-36s %6s  %14s  %14s  %6s\n", "", "", "GB/s (xmemcpy)", "GB/s (xmemcpy)", "GB/s");
    const Shape gn_shapes[] = {{2, 256, 56, 56}, {2, 256, 100, 152}, {64, 256, 14, 14}, {2, 64, 200, 304}};
    for (const Shape& s : gn_shapes) bench_group_norm(s, 32, budget);
  }
  return 0;
}
