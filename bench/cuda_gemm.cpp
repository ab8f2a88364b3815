// GEMM throughput through gndet's bmm (cuBLAS): 4096^3 in FP32, in TF32 (the default for float32)
// and 2048^3 in FP64, plus a batched detection-sized product; TFLOP/s = 2 M N K / time.
#include <cstdio>

#include "bench/cuda_timer.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "tensor/factory.h"
#include "tensor/random.h"

using namespace gndet;

namespace {

void run(const char* name, int64_t batch, int64_t m, int64_t k, int64_t n, DType dtype, bool tf32) {
  const Device gpu = Device::cuda(0);
  Generator gen(7);
  const Tensor a = rand({batch, m, k}, gen, TensorOptions(dtype, gpu)) - 0.5;  // random: never time zeros
  const Tensor b = rand({batch, k, n}, gen, TensorOptions(dtype, gpu)) - 0.5;
  Tensor out = empty({batch, m, n}, TensorOptions(dtype, gpu));
  cuda::set_allow_tf32(tf32);
  const double ms = bench::median_ms([&] { bmm_kernel(gpu, out, a, b); }, 3, 10);
  const double tflops = 2.0 * static_cast<double>(batch * m * n * k) / (ms * 1e-3) / 1e12;
  std::printf("%-44s %9.3f ms %9.1f TFLOP/s\n", name, ms, tflops);
}

}  // namespace

int main() {
  try {
    if (!cuda::is_available()) {
      std::fprintf(stderr, "cuda_gemm: no CUDA GPU present\n");
      return 2;
    }
    bench::print_header("gndet CUDA GEMM benchmark (cuBLAS through bmm; median of 10 runs after 3 warm-ups)");
    const bool prev = cuda::allow_tf32();
    run("FP32 4096 x 4096 x 4096 (TF32 off)", 1, 4096, 4096, 4096, kFloat32, false);
    run("TF32 4096 x 4096 x 4096", 1, 4096, 4096, 4096, kFloat32, true);
    run("FP64 2048 x 2048 x 2048", 1, 2048, 2048, 2048, kFloat64, false);
    run("TF32 batch 8 of 1024 x 1024 x 256 (box head fc)", 8, 1024, 256, 1024, kFloat32, true);
    cuda::set_allow_tf32(prev);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_gemm: %s\n", e.what());
    return 1;
  }
}
