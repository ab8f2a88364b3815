// CUDA parity of mixed precision (ops/autocast.h): the bfloat16 / float16 conversions of the copy
// kernel against the CPU's bit for bit; the 16-bit convolution kernels (cuDNN and the own path)
// and GEMM (cuBLAS) against the CPU's float32 kernels on the same rounded operands, result
// rounded; conv2d and linear under autocast through autograd against the CPU's emulation.
//
// Tolerances: both sides multiply the same 16-bit operands (products exact in float32) and sum
// in float32 in different orders, then round to the 16-bit type. The sums differ by float32
// summation error (2e-6 x terms x 9 absolute covers it, as in test_cuda_conv.cpp); where that
// straddles a rounding boundary the results differ by one 16-bit ulp, at most 2^-7 (bfloat16) or
// 2^-10 (float16) relative: that is the rtol. A wrong tap or an unrounded operand is off by
// far more.
#include <cmath>
#include <cstring>
#include <limits>

#include "gndet_config.h"
#include "ops/autocast.h"
#include "ops/conv.h"
#include "ops/cuda/tuning.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/linear.h"
#include "ops/reduce.h"
#include "tensor/grad_mode.h"
#include "tests/cuda/conv_cases.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::gpu;

namespace {

double rtol_for(DType dt) { return dt == kBFloat16 ? 0x1p-7 : 0x1p-10; }
double atol_for(int64_t terms) { return 2e-6 * 9.0 * static_cast<double>(terms); }

// The float32 kernel's result on the rounded operands, rounded: what a 16-bit kernel must give.
Tensor rounded(const Tensor& t32, DType dt) { return t32.to(dt).to(kFloat32); }

// A 3x3, a strided 1x1, a grouped and the 7x7 stem geometry of test_cuda_conv.cpp.
std::vector<test::ConvCase> cases() {
  const std::vector<test::ConvCase>& all = test::kCases;
  return {all[0], all[9], all[4], all[10]};
}

}  // namespace

TEST_CASE("cuda parity: bfloat16 / float16 conversions on the device equal the CPU's bit for bit", "[cuda][autocast]") {
  GNDET_REQUIRE_CUDA();
  std::vector<float> v;
  Generator gen(31);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t bits = static_cast<uint32_t>(gen.uniform() * 4294967296.0);
    float f;
    std::memcpy(&f, &bits, 4);
    if (std::isfinite(f)) v.push_back(f);
  }
  for (const float f : {65504.0f, 65520.0f, -65520.0f, 0x1p-25f, 0x1.8p-25f, 0x1p-14f, -0.0f, 1.0f + 0x1p-8f,
                        std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    v.push_back(f);
  }
  const Tensor x = from_data(v);
  for (const DType dt : {kBFloat16, kFloat16}) {
    INFO(dtype_name(dt));
    Tensor hg = test::poisoned(x.shape(), TensorOptions(dt, gpu()));
    hg.copy_(x.to(gpu()));  // float32 -> 16 bits on the device
    const Tensor hc = x.to(dt);
    test::check_equal(hg.cpu().to(kFloat32), hc.to(kFloat32), "float32 -> 16 bits");
    Tensor fg = test::poisoned(x.shape(), TensorOptions(kFloat32, gpu()));
    fg.copy_(hc.to(gpu()));  // 16 bits -> float32 on the device
    test::check_equal(fg.cpu(), hc.to(kFloat32), "16 bits -> float32");
  }
}

TEST_CASE("cuda parity: 16-bit convolution kernels (cuDNN and own path) and GEMM", "[cuda][autocast]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  test::NoTf32Guard fp32;  // the CPU reference's float32 sums exact FP32 on the GPU's own path too
  for (const cuda::ConvBackend backend : {cuda::ConvBackend::Auto, cuda::ConvBackend::Gemm}) {
    const cuda::ConvBackendGuard use(backend);
    const cuda::ConvCounts before = cuda::conv_counts();
    uint64_t seed = 9700;
    for (const DType dt : {kBFloat16, kFloat16}) {
      for (const test::ConvCase& c : cases()) {
        INFO((backend == cuda::ConvBackend::Gemm ? "own path" : "auto") << ", " << dtype_name(dt) << ", " << c.name);
        const Shape ys = test::out_shape(c);
        const Tensor x = test::random_nonzero(c.x, seed).to(dt), w = test::random_nonzero(c.w, seed + 1).to(dt);
        const Tensor dy = test::random_nonzero(ys, seed + 2).to(dt);
        seed += 3;
        const Tensor x32 = x.to(kFloat32), w32 = w.to(kFloat32), dy32 = dy.to(kFloat32);
        const int64_t cin_g = c.x[1] / c.p.groups, cout_g = c.w[0] / c.p.groups;

        Tensor yc = empty(ys), yg = test::poisoned(ys, TensorOptions(dt, gpu()));
        conv2d_forward_kernel(kCPU, yc, x32, w32, Tensor(), c.p);
        conv2d_forward_kernel(gpu(), yg, x.to(gpu()), w.to(gpu()), Tensor(), c.p);
        check_close(yg.cpu().to(kFloat32), rounded(yc, dt), atol_for(cin_g * c.w[2] * c.w[3]), rtol_for(dt), "forward");

        Tensor dxc = empty(c.x), dxg = test::poisoned(c.x, TensorOptions(dt, gpu()));
        conv2d_backward_input_kernel(kCPU, dxc, dy32, w32, c.p);
        conv2d_backward_input_kernel(gpu(), dxg, dy.to(gpu()), w.to(gpu()), c.p);
        check_close(dxg.cpu().to(kFloat32), rounded(dxc, dt), atol_for(cout_g * c.w[2] * c.w[3]), rtol_for(dt),
                    "input gradient");

        Tensor dwc = empty(c.w), dwg = test::poisoned(c.w, TensorOptions(dt, gpu()));
        conv2d_backward_weight_kernel(kCPU, dwc, dy32, x32, c.p);
        conv2d_backward_weight_kernel(gpu(), dwg, dy.to(gpu()), x.to(gpu()), c.p);
        check_close(dwg.cpu().to(kFloat32), rounded(dwc, dt), atol_for(ys[0] * ys[2] * ys[3]), rtol_for(dt),
                    "weight gradient");
      }
      // GEMM: a (3, 17, 40) @ b (3, 40, 9), and a transposed operand.
      const Tensor a = test::random_nonzero({3, 17, 40}, seed).to(dt), b = test::random_nonzero({3, 40, 9}, seed + 1).to(dt);
      const Tensor bt = test::random_nonzero({3, 9, 40}, seed + 2).to(dt).transpose(1, 2);
      for (const Tensor& rhs : {b, bt}) {
        Tensor oc = empty({3, 17, 9}), og = test::poisoned({3, 17, 9}, TensorOptions(dt, gpu()));
        bmm_kernel(kCPU, oc, a.to(kFloat32), rhs.to(kFloat32));
        bmm_kernel(gpu(), og, a.to(gpu()), test::mirror(rhs, gpu()));
        check_close(og.cpu().to(kFloat32), rounded(oc, dt), atol_for(40), rtol_for(dt), "bmm");
      }
    }
    const cuda::ConvCounts after = cuda::conv_counts();
    const int64_t calls = 3 * 2 * static_cast<int64_t>(cases().size());
    if (backend == cuda::ConvBackend::Gemm) {
      CHECK(after.gemm - before.gemm == calls);
    } else {
      // Which 16-bit cases cuDNN took (the rest fell back to the own path, also checked above).
      WARN("16-bit convolutions: " << after.cudnn - before.cudnn << " on cuDNN, " << after.gemm - before.gemm
                                   << " on the own path (cuDNN built: " << GNDET_WITH_CUDNN << ")");
    }
  }
}

TEST_CASE("cuda parity: conv2d, conv_transpose2d and linear under autocast, forward and backward", "[cuda][autocast]") {
  GNDET_REQUIRE_CUDA();
  test::NoTf32Guard fp32;
  for (const DType dt : {kBFloat16, kFloat16}) {
    INFO(dtype_name(dt));
    Generator gen(41);
    const Tensor x = randn({2, 8, 12, 10}, gen), w = randn({6, 8, 3, 3}, gen), b = randn({6}, gen);
    const Tensor wt = randn({8, 4, 2, 2}, gen), xl = randn({5, 64}, gen), wl = randn({7, 64}, gen), bl = randn({7}, gen);
    auto run = [&](Device dev) {
      const autocast::Guard amp(dt);
      Tensors in;
      for (const Tensor& t : {x, w, b, wt, xl, wl, bl}) in.push_back(t.to(dev).detach().set_requires_grad());
      const Tensor y = conv2d(in[0], in[1], in[2], {1, 1}, {1, 1});
      const Tensor yt = conv_transpose2d(in[0], in[3], Tensor(), {2, 2});
      const Tensor yl = linear(in[4], in[5], in[6]);
      // Fixed output gradients: the sums of outputs times position-dependent weights.
      const Tensor loss = sum(y * sigmoid(y.detach())) + sum(yt * 0.5) + sum(yl * yl.detach());
      loss.backward();
      Tensors out{y, yt, yl};
      for (const Tensor& t : in) out.push_back(t.grad());
      for (Tensor& t : out) t = t.detach().cpu();
      return out;
    };
    const Tensors c = run(kCPU), g = run(gpu());
    const char* names[] = {"conv2d", "conv_transpose2d", "linear", "dx", "dw", "db", "dw transposed", "dx linear",
                           "dw linear", "db linear"};
    for (size_t i = 0; i < c.size(); ++i) {
      // Values of order 1-10 summed over at most ~2000 terms: float32 summation orders differ by
      // well under 2e-3. Gradients pass through two rounded products (the output's rounding moves
      // the output gradient here too): twice the one-ulp rtol.
      check_close(g[i], c[i], 2e-3, 2 * rtol_for(dt), names[i]);
    }
  }
}
