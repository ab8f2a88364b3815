// GroupNorm forward and backward (G = 32, affine, float32) against the device's copy bandwidth,
// measured in the same run: a device-to-device cudaMemcpyAsync of 2^26 floats is the reference.
// Bytes counted: each input read once and each output written once (forward: x in, y out;
// backward: dy and x in, dx out; the per-channel and per-group tensors are negligible).
// Shapes: the FPN P2 level and the stem of a 2-image 800x1333 batch, the box head's RoIs, layer4.
// Each shape runs with the automatic kernel choice and with the two_pass family forced (what a
// stats kernel + apply kernel design costs), so the benefit of the fused family is visible.
//
// Targets (ops/cuda/group_norm_common.cuh): forward and backward >= 0.75 of the copy bandwidth
// on (2, 256, 200, 336); faster than PyTorch's GroupNorm on every shape (bench/torch_group_norm.py
// reads the RESULT lines below and prints the ratios).
#include <cstdio>
#include <string>
#include <vector>

#include "bench/cuda_timer.h"
#include "ops/cuda/tuning.h"
#include "ops/elementwise.h"
#include "ops/norm.h"
#include "tensor/factory.h"
#include "tensor/random.h"

using namespace gndet;

namespace {

struct Shape4 {
  int64_t N, C, H, W;
};

std::string shape_name(const Shape4& s) {
  // snprintf, not string concatenation: GCC 12's -Wrestrict misfires on "(" + std::string (bug 105329)
  char buf[96];
  std::snprintf(buf, sizeof buf, "(%lld,%lld,%lld,%lld)", static_cast<long long>(s.N), static_cast<long long>(s.C),
                static_cast<long long>(s.H), static_cast<long long>(s.W));
  return buf;
}

const char* algo_name(cuda::GroupNormAlgo a) { return a == cuda::GroupNormAlgo::TwoPass ? "two_pass" : "auto"; }

}  // namespace

int main() {
  try {
    if (!cuda::is_available()) {
      std::fprintf(stderr, "cuda_group_norm: no CUDA GPU present\n");
      return 2;
    }
    bench::print_header("gndet CUDA GroupNorm benchmark (G = 32, float32, median of 20 runs after 3 warm-ups, CUDA events)");
    const Device gpu = Device::cuda(0);
    Generator gen(1);

    constexpr int64_t n_copy = int64_t{1} << 26;
    const Tensor src = rand({n_copy}, gen, TensorOptions(kFloat32, gpu));
    Tensor dst = empty({n_copy}, gpu);
    const double copy_ms = bench::median_ms([&] {
      GNDET_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), n_copy * sizeof(float), cudaMemcpyDeviceToDevice,
                                       cuda::stream_for(0)));
    });
    const double copy_gbps = 2.0 * n_copy * sizeof(float) / (copy_ms * 1e-3) / 1e9;
    std::printf("reference: cudaMemcpy D2D of 2^26 floats: %.3f ms, %.1f GB/s (read + write)\n\n", copy_ms, copy_gbps);
    std::printf("%-20s %-9s %-9s %10s %10s %8s\n", "shape (N,C,H,W)", "pass", "kernels", "median ms", "GB/s", "vs copy");

    const std::vector<Shape4> shapes = {{2, 256, 200, 336}, {2, 64, 400, 672}, {512, 256, 7, 7}, {2, 2048, 25, 42}};
    const int64_t G = 32;
    for (const Shape4& s : shapes) {
      const int64_t S = s.H * s.W, numel = s.N * s.C * S;
      // Activations around 0.5 with unit spread, as after a convolution; not zeros.
      const Tensor x = randn({s.N, s.C, S}, gen, TensorOptions(kFloat32, gpu)) + 0.5;
      const Tensor dy = randn({s.N, s.C, S}, gen, TensorOptions(kFloat32, gpu));
      const Tensor w = rand({s.C}, gen, TensorOptions(kFloat32, gpu)) + 0.5, b = randn({s.C}, gen, TensorOptions(kFloat32, gpu));
      Tensor y = empty({s.N, s.C, S}, gpu), dx = empty({s.N, s.C, S}, gpu);
      Tensor mean = empty({s.N, G}, gpu), rstd = empty({s.N, G}, gpu), dw = empty({s.C}, gpu), db = empty({s.C}, gpu);
      const double bytes = static_cast<double>(numel) * sizeof(float);
      for (const cuda::GroupNormAlgo algo : {cuda::GroupNormAlgo::Auto, cuda::GroupNormAlgo::TwoPass}) {
        const cuda::GroupNormAlgoGuard use(algo);
        const double fwd_ms = bench::median_ms([&] { group_norm_kernel(gpu, y, mean, rstd, x, w, b, G, 1e-5); });
        const double bwd_ms =
            bench::median_ms([&] { group_norm_backward_kernel(gpu, dx, dw, db, dy, x, mean, rstd, w, G); });
        const double fwd_gbps = 2 * bytes / (fwd_ms * 1e-3) / 1e9, bwd_gbps = 3 * bytes / (bwd_ms * 1e-3) / 1e9;
        std::printf("%-20s %-9s %-9s %10.3f %10.1f %8.2f\n", shape_name(s).c_str(), "forward", algo_name(algo), fwd_ms,
                    fwd_gbps, fwd_gbps / copy_gbps);
        std::printf("%-20s %-9s %-9s %10.3f %10.1f %8.2f\n", shape_name(s).c_str(), "backward", algo_name(algo), bwd_ms,
                    bwd_gbps, bwd_gbps / copy_gbps);
        if (algo == cuda::GroupNormAlgo::Auto) {
          // For bench/torch_group_norm.py: shape, pass, milliseconds.
          std::printf("RESULT group_norm %ld %ld %ld %ld forward %.5f\n", static_cast<long>(s.N), static_cast<long>(s.C),
                      static_cast<long>(s.H), static_cast<long>(s.W), fwd_ms);
          std::printf("RESULT group_norm %ld %ld %ld %ld backward %.5f\n", static_cast<long>(s.N), static_cast<long>(s.C),
                      static_cast<long>(s.H), static_cast<long>(s.W), bwd_ms);
          if (s.N == 2 && s.C == 256 && s.H == 200) {
            std::printf("target (2,256,200,336): forward %.2f, backward %.2f of the copy bandwidth (>= 0.75): %s\n",
                        fwd_gbps / copy_gbps, bwd_gbps / copy_gbps,
                        fwd_gbps / copy_gbps >= 0.75 && bwd_gbps / copy_gbps >= 0.75 ? "met" : "NOT met");
          }
        }
      }
    }
    std::printf("RESULT copy_gbps %.2f\n", copy_gbps);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_group_norm: %s\n", e.what());
    return 1;
  }
}
