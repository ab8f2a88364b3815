// CPU layer benchmark: conv2d (forward, input gradient, weight gradient) in GFLOP/s on
// ResNet-50 / Mask R-CNN layer shapes, and GroupNorm forward / backward in GB/s, each printed
// with a same-run reference so that the numbers mean something on any machine:
//   GFLOP/s  against the fp32 peak: AVX-512 FMAs in registers on every thread (without AVX-512:
//            against a large square Eigen GEMM, 1024^3, also printed for comparison),
//   GB/s     against a plain memcpy of the same bytes, split over the same OpenMP threads,
// each measured in rounds interleaved with the layer it is the reference for, so that both see
// the same machine conditions (other processes, clock frequency).
// Bytes count each input read once and each output written once (GN forward: x in, y out;
// backward: dy and x in, dx out; the (N, G) statistics and (C) parameters are negligible).
// The conv table's last column is each layer's roofline: the GFLOP/s its bytes (x, y and w, once
// each) allow at the bandwidth of a copy as large as its larger activation, as a fraction of the
// peak; below 1 the layer is memory-bound and no kernel reaches the peak on it.
//
//   build-layers/bench/cpu_layers [--quick] [--conv-only | --gn-only] [--only TEXT] [--demo]
// (--only TEXT: the convolutions and GroupNorm shapes whose printed name contains TEXT)
// With -march=native, GCC 12 warns that its own AVX-512 intrinsics use '__Y' uninitialised where
// Eigen's GEMM kernels are inlined into this file: a known false positive (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include <unistd.h>

#include "tensor/grad_mode.h"
#include "ops/conv.h"
#include "ops/norm.h"
#include "tensor/factory.h"
#include "tensor/random.h"

using namespace gndet;

namespace {

bool gndet_has_avx512() {
#if defined(__AVX512F__)
  return true;
#else
  return false;
#endif
}

// The CPU and its caches, for the record: the same VM image has run on Intel CPUs of different
// generations (Sapphire Rapids with 2 MB of L2 per core and 260 MB of L3; Ice Lake with 1.25 MB and
// 48 MB), whose tables differ by far more than this benchmark's run-to-run noise.
std::string machine_line() {
  std::string model = "unknown CPU", family, number;
  if (std::FILE* f = std::fopen("/proc/cpuinfo", "r")) {
    char line[512];
    auto value = [&] {
      const char* colon = std::strchr(line, ':');
      std::string v = colon != nullptr ? colon + 1 : "";
      v.erase(0, v.find_first_not_of(' '));
      v.erase(v.find_last_not_of(" \n") + 1);
      return v;
    };
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "model name", 10) == 0 && model == "unknown CPU") model = value();
      else if (std::strncmp(line, "cpu family", 10) == 0 && family.empty()) family = value();
      else if (std::strncmp(line, "model\t", 6) == 0 && number.empty()) number = value();
    }
    std::fclose(f);
  }
  const long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE), l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  char text[768];
  std::snprintf(text, sizeof text, "CPU: %s (family %s, model %s), L2 %ld KB per core, L3 %ld MB", model.c_str(),
                family.empty() ? "?" : family.c_str(), number.empty() ? "?" : number.c_str(), l2 > 0 ? l2 >> 10 : -1,
                l3 > 0 ? l3 >> 20 : -1);
  return text;
}

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

// The fp32 peak: independent AVX-512 FMA chains in registers on every OpenMP thread (24 chains
// hide the FMA latency), i.e. what the cores can do at all, memory aside.
struct PeakFma {
  double gflops = 0.0;
  void run() {
#if defined(__AVX512F__)
    constexpr int kChains = 24;
    constexpr int64_t kIters = 2'000'000;
    float sink = 0.0f;
#pragma omp parallel reduction(+ : sink)
    {
      __m512 acc[kChains];
      for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(1e-3f * static_cast<float>(i + omp_get_thread_num()));
      const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(1e-6f);
      for (int64_t k = 0; k < kIters; ++k) {
#pragma GCC unroll 24
        for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
      }
      __m512 total = acc[0];
      for (int i = 1; i < kChains; ++i) total = _mm512_add_ps(total, acc[i]);
      sink += _mm512_reduce_add_ps(total);
    }
    volatile float keep = sink;  // the chains must be computed
    (void)keep;
    flops_done = 2.0 * 16 * kChains * static_cast<double>(kIters) * omp_get_max_threads();
#endif
  }
  double flops() const { return flops_done; }
  double flops_done = 0.0;
};

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

void bench_conv(const ConvShape& s, PeakGemm& gemm, PeakFma& peak, double budget_s) {
  Generator gen(1);
  const Tensor x = randn({s.N, s.C_in, s.H, s.W}, gen);
  const Tensor w = randn({s.C_out, s.C_in / s.groups, s.k, s.k}, gen);
  const Conv2dParams p{{s.stride, s.stride}, {s.pad, s.pad}, {1, 1}, s.groups};
  const Tensor y = conv2d(x, w, Tensor(), p.stride, p.padding, p.dilation, p.groups);
  const Tensor dy = randn(y.shape(), gen);
  Tensor dx = empty(x.shape()), dw = empty(w.shape());
  const double flops = 2.0 * static_cast<double>(y.numel()) * static_cast<double>(s.C_in / s.groups * s.k * s.k);
  // Each of the three kernels reads two of x, y (or dy) and w and writes the third: at least these
  // bytes cross memory once. A copy of the larger activation measures the bandwidth of the level
  // they come from (L3 or DRAM).
  const double bytes = sizeof(float) * static_cast<double>(x.numel() + y.numel() + w.numel());
  ParallelCopy copy(sizeof(float) * static_cast<size_t>(std::max(x.numel(), y.numel())));
  const std::vector<double> t = best_times(
      {[&] { peak.run(); }, [&] { gemm.run(); }, [&] { conv2d(x, w, Tensor(), p.stride, p.padding, p.dilation, p.groups); },
       [&] { conv2d_backward_input_kernel(kCPU, dx, dy, w, p); },
       [&] { conv2d_backward_weight_kernel(kCPU, dw, dy, x, p); }, [&] { copy.run(); }},
      3, budget_s);
  const double ref = peak.flops() > 0 ? peak.flops() / t[0] / 1e9 : gemm.flops() / t[1] / 1e9;
  std::printf("%-36s %6.2f", s.name, flops / 1e9);
  for (int i = 2; i <= 4; ++i) {
    const double g = flops / t[i] / 1e9;
    std::printf("  %6.1f (%4.2f)", g, g / ref);
  }
  // The roofline: the GFLOP/s these bytes allow at the copy's bandwidth, as a fraction of the
  // reference, capped at 1 (a layer below 1 cannot reach the peak, whatever its kernel).
  const double memory_gflops = flops / (bytes / (copy.bytes_moved() / t[5])) / 1e9;
  std::printf("  %6.1f  %6.1f   %4.2f\n", ref, gemm.flops() / t[1] / 1e9, std::min(1.0, memory_gflops / ref));
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
  std::string only;  // --only TEXT: the rows whose printed name contains TEXT
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--only" && i + 1 < argc) only = argv[++i];
    quick = quick || a == "--quick";
    if (a == "--conv-only") gn = false;
    if (a == "--gn-only") conv = false;
    demo = demo || a == "--demo";
  }
  const double budget = quick ? 0.1 : 1.0;  // seconds of rounds per shape
  autograd::NoGradGuard no_grad;
  std::printf("gndet CPU layers, %d OpenMP threads, Eigen SIMD: %s\n", omp_get_max_threads(),
              Eigen::SimdInstructionSetsInUse());
  std::printf("%s\n", machine_line().c_str());

  if (conv) {
    PeakGemm gemm(1024);
    PeakFma peak;
    const char* ref = gndet_has_avx512() ? "xpeak" : "xGEMM";  // without AVX-512 there is no peak loop
    std::printf("\n%-36s %6s  %14s  %14s  %14s  %6s  %6s  %6s\n", "conv2d float32 (N,Cin,H,W)->Cout", "GFLOP", "forward",
                "grad input", "grad weight", "peak", "Eigen", "memory");
    std::printf("%-36s %6s  %9s (%s)  %9s (%s)  %9s (%s)  %6s  %6s  %6s\n", "", "", "GFLOP/s", ref, "GFLOP/s", ref, "GFLOP/s", ref,
                "GFLOP/s", "GEMM", ref);
    // ResNet-50 + FPN on one 800 x 1344 image (the zoo's test scale, padded to 32): every kind of
    // convolution that is not Winograd (the stem, 1x1, strided), then the 3x3s.
    const ConvShape convs[] = {
        {"stem 7x7/2 (1,3,800,1344)->64", 1, 3, 800, 1344, 64, 7, 2, 3, 1},
        {"layer1 1x1 (1,64,200,336)->256", 1, 64, 200, 336, 256, 1, 1, 0, 1},
        {"layer1 1x1 (1,256,200,336)->64", 1, 256, 200, 336, 64, 1, 1, 0, 1},
        {"layer2 3x3/2 (1,128,200,336)->128", 1, 128, 200, 336, 128, 3, 2, 1, 1},
        {"layer2 1x1/2 (1,256,200,336)->512", 1, 256, 200, 336, 512, 1, 2, 0, 1},
        {"layer3 3x3/2 (1,256,100,168)->256", 1, 256, 100, 168, 256, 3, 2, 1, 1},
        {"layer3 1x1 (1,1024,50,84)->256", 1, 1024, 50, 84, 256, 1, 1, 0, 1},
        {"layer3 1x1 (1,256,50,84)->1024", 1, 256, 50, 84, 1024, 1, 1, 0, 1},
        {"layer4 3x3/2 (1,512,50,84)->512", 1, 512, 50, 84, 512, 3, 2, 1, 1},
        {"layer4 1x1 (1,2048,25,42)->512", 1, 2048, 25, 42, 512, 1, 1, 0, 1},
        {"fpn lateral 1x1 (1,512,100,168)->256", 1, 512, 100, 168, 256, 1, 1, 0, 1},
        // Earlier tables' shapes (224 x 224 images, two of them) and the heads.
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
        // ResNeXt-101 32x4d's grouped 3x3s on one 800 x 1344 image (4, 8, 16, 32 channels per
        // group in layers 1-4; each layer's first block strided).
        {"resnext l1 3x3 g32 (1,128,200,336)", 1, 128, 200, 336, 128, 3, 1, 1, 32},
        {"resnext l2 3x3/2 g32 (1,256,200,336)", 1, 256, 200, 336, 256, 3, 2, 1, 32},
        {"resnext l2 3x3 g32 (1,256,100,168)", 1, 256, 100, 168, 256, 3, 1, 1, 32},
        {"resnext l3 3x3/2 g32 (1,512,100,168)", 1, 512, 100, 168, 512, 3, 2, 1, 32},
        {"resnext l3 3x3 g32 (1,512,50,84)", 1, 512, 50, 84, 512, 3, 1, 1, 32},
        {"resnext l4 3x3/2 g32 (1,1024,50,84)", 1, 1024, 50, 84, 1024, 3, 2, 1, 32},
        {"resnext l4 3x3 g32 (1,1024,25,42)", 1, 1024, 25, 42, 1024, 3, 1, 1, 32},
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
      for (const ConvShape& s : demo_convs) bench_conv(s, gemm, peak, budget);
    } else {
      for (const ConvShape& s : convs) {
        if (only.empty() || std::string(s.name).find(only) != std::string::npos) bench_conv(s, gemm, peak, budget);
      }
      // Which of the rows a zoo training step runs: the layers below are frozen (frozen_stages 1).
      std::printf("(stem and layer1, ResNeXt's l1 too, are frozen in every zoo config but Detectron's from-scratch ones:\n"
                  " their training steps run the forward only, neither gradient)\n");
    }
  }
  if (gn && !demo) {
    std::printf("\n%-36s %6s  %14s  %14s  %6s\n", "group_norm float32", "MB", "forward", "backward", "memcpy");
    std::printf("%-36s %6s  %14s  %14s  %6s\n", "", "", "GB/s (xmemcpy)", "GB/s (xmemcpy)", "GB/s");
    // The backbone's and the heads' GroupNorms on one 800 x 1344 image (the stem's, layer1's inner
    // and outer ones, layer2's and layer3's outputs, an FPN level, the box head's four convs on 512
    // RoIs of a training step, the mask head on 100 detections), then the earlier tables' shapes.
    const Shape gn_shapes[] = {{1, 64, 400, 672}, {1, 64, 200, 336}, {1, 256, 200, 336}, {1, 512, 100, 168},
                               {1, 1024, 50, 84}, {1, 256, 100, 168}, {512, 256, 7, 7},  {100, 256, 14, 14},
                               {2, 256, 56, 56},  {2, 256, 100, 152}, {64, 256, 14, 14}, {2, 64, 200, 304}};
    for (const Shape& s : gn_shapes) {
      if (only.empty() || (shape_str(s) + " G 32").find(only) != std::string::npos) bench_group_norm(s, 32, budget);
    }
  }
  return 0;
}
