// CUDA parity of the convolution kernels (ops/cuda/conv.cu, conv_cudnn.cpp) with the CPU's
// im2col + Eigen kernels: forward, input gradient, weight gradient and the bias gradient, for
// strides, padding, dilation, groups (ResNeXt, depthwise), 1x1 and 7x7 kernels and RoI-head
// batches; through cuDNN (when built with it) and through the own GEMM path, FP32 with TF32 off
// and FP64, on poisoned outputs. Then conv2d / conv_transpose2d through autograd, the
// deterministic and benchmark switches.
//
// Tolerances: every output is a sum of `terms` products of values below 3 in magnitude. The CPU
// and the GPU add them in different orders, and cuDNN may use Winograd or FFT algorithms whose
// transforms add rounding of their own (a few ulps of the largest partial sums): 2e-6 * terms
// * 9 absolute (9 = the largest product) plus 1e-5 relative covers both with a wide margin,
// while a wrong tap or a missing group (an error of order 1) fails it. FP64: 1e-12 * terms * 9.
#include <string>

#include "tensor/grad_mode.h"
#include "gndet_config.h"
#include "ops/conv.h"
#include "ops/cuda/tuning.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tests/cuda/conv_cases.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::gpu;

namespace {

using test::ConvCase;
using test::kCases;
using test::out_shape;

// Tolerance for sums of `terms` products of values below 3 (see the header).
double atol_for(DType dt, int64_t terms) { return (dt == kFloat32 ? 2e-6 : 1e-12) * 9.0 * static_cast<double>(terms); }
double rtol_for(DType dt) { return dt == kFloat32 ? 1e-5 : 1e-12; }

const char* backend_name(cuda::ConvBackend b) { return b == cuda::ConvBackend::Gemm ? "gemm" : "auto (cuDNN if built)"; }

// Runs the three kernels and channel_sum on both devices and compares.
void check_case(const ConvCase& c, DType dt, uint64_t seed) {
  const Shape ys = out_shape(c);
  const int64_t cin_g = c.x[1] / c.p.groups, cout_g = c.w[0] / c.p.groups;
  const Tensor x = test::random_nonzero(c.x, seed, dt);
  const Tensor w = test::random_nonzero(c.w, seed + 1, dt);
  const Tensor b = test::random_nonzero({c.w[0]}, seed + 2, dt);
  const Tensor dy = test::random_nonzero(ys, seed + 3, dt);
  const Tensor xg = x.to(gpu()), wg = w.to(gpu()), bg = b.to(gpu()), dyg = dy.to(gpu());

  Tensor yc = test::poisoned(ys, TensorOptions(dt)), yg = test::poisoned(ys, TensorOptions(dt, gpu()));
  conv2d_forward_kernel(kCPU, yc, x, w, b, c.p);
  conv2d_forward_kernel(gpu(), yg, xg, wg, bg, c.p);
  check_close(yg, yc, atol_for(dt, cin_g * c.w[2] * c.w[3]), rtol_for(dt), "forward");

  Tensor dxc = test::poisoned(c.x, TensorOptions(dt)), dxg = test::poisoned(c.x, TensorOptions(dt, gpu()));
  conv2d_backward_input_kernel(kCPU, dxc, dy, w, c.p);
  conv2d_backward_input_kernel(gpu(), dxg, dyg, wg, c.p);
  check_close(dxg, dxc, atol_for(dt, cout_g * c.w[2] * c.w[3]), rtol_for(dt), "input gradient");

  Tensor dwc = test::poisoned(c.w, TensorOptions(dt)), dwg = test::poisoned(c.w, TensorOptions(dt, gpu()));
  conv2d_backward_weight_kernel(kCPU, dwc, dy, x, c.p);
  conv2d_backward_weight_kernel(gpu(), dwg, dyg, xg, c.p);
  check_close(dwg, dwc, atol_for(dt, ys[0] * ys[2] * ys[3]), rtol_for(dt), "weight gradient");

  Tensor dbc = test::poisoned({c.w[0]}, TensorOptions(dt)), dbg = test::poisoned({c.w[0]}, TensorOptions(dt, gpu()));
  channel_sum_kernel(kCPU, dbc, dy);
  channel_sum_kernel(gpu(), dbg, dyg);
  check_close(dbg, dbc, (dt == kFloat32 ? 2e-6 : 1e-12) * 3.0 * static_cast<double>(ys[0] * ys[2] * ys[3]),
              rtol_for(dt), "bias gradient");
}

}  // namespace

TEST_CASE("cuda parity: conv2d kernels, every geometry, cuDNN and GEMM paths", "[cuda][conv]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  test::NoTf32Guard fp32;
  for (const cuda::ConvBackend backend : {cuda::ConvBackend::Auto, cuda::ConvBackend::Gemm}) {
    const cuda::ConvBackendGuard use(backend);
    const cuda::ConvCounts before = cuda::conv_counts();
    uint64_t seed = 9000;
    for (const DType dt : {kFloat32, kFloat64}) {
      for (const ConvCase& c : kCases) {
        INFO(backend_name(backend) << ", " << dtype_name(dt) << ", " << c.name << ": x " << shape_str(c.x) << ", w "
                                   << shape_str(c.w));
        check_case(c, dt, seed);
        seed += 4;
      }
    }
    // The path under test really ran: every call on the GEMM path when forced; with cuDNN built,
    // cuDNN served calls under auto (FP64 and FMA-only FP32 algorithms exist for all of these).
    const cuda::ConvCounts after = cuda::conv_counts();
    const int64_t calls = 3 * 2 * static_cast<int64_t>(kCases.size());
    if (backend == cuda::ConvBackend::Gemm) {
      CHECK(after.gemm - before.gemm == calls);
    } else if (GNDET_WITH_CUDNN) {
      CHECK(after.cudnn - before.cudnn > calls / 2);
    }
  }
}

TEST_CASE("cuda parity: conv2d in float32 with TF32 allowed stays within TF32 accuracy", "[cuda][conv]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const bool prev = cuda::allow_tf32();
  cuda::set_allow_tf32(true);
  const ConvCase c = kCases[0];
  const Tensor x = test::random_nonzero(c.x, 9500), w = test::random_nonzero(c.w, 9501);
  Tensor yc = test::poisoned(out_shape(c), TensorOptions(kFloat32));
  Tensor yg = test::poisoned(out_shape(c), TensorOptions(kFloat32, gpu()));
  conv2d_forward_kernel(kCPU, yc, x, w, Tensor(), c.p);
  conv2d_forward_kernel(gpu(), yg, x.to(gpu()), w.to(gpu()), Tensor(), c.p);
  cuda::set_allow_tf32(prev);
  // TF32 keeps 10 mantissa bits of each operand: a relative error up to ~2^-10 per product, so
  // 72 products of up to 9 give at most ~72 * 9 * 1e-3 absolute; typical errors are far smaller.
  check_close(yg, yc, 72 * 9 * 1e-3, 1e-2, "forward, TF32");
}

TEST_CASE("cuda parity: conv2d and conv_transpose2d through autograd", "[cuda][conv][autograd]") {
  GNDET_REQUIRE_CUDA();
  test::NoTf32Guard fp32;
  struct Case {
    const char* name;
    bool transposed;
    Shape x, w;
    Pair stride, padding, output_padding, dilation;
    int64_t groups;
  };
  const std::vector<Case> cases = {
      {"conv2d 3x3 stride 2 with bias", false, {2, 6, 11, 9}, {8, 6, 3, 3}, {2, 2}, {1, 1}, {0, 0}, {1, 1}, 1},
      {"mask head deconv 2x2 / 2", true, {3, 8, 7, 7}, {8, 4, 2, 2}, {2, 2}, {0, 0}, {0, 0}, {1, 1}, 1},
      {"deconv 3x3 / 2, output_padding 1", true, {1, 6, 5, 6}, {6, 4, 3, 3}, {2, 2}, {1, 1}, {1, 1}, {1, 1}, 1},
      {"deconv grouped", true, {2, 4, 5, 5}, {4, 3, 3, 3}, {1, 1}, {1, 1}, {0, 0}, {1, 1}, 2},
      // output_padding below the dilation but not the stride: cuDNN computes another output
      // size for this geometry, so the GEMM path must take it.
      {"deconv dilation 2, output_padding 1", true, {2, 4, 5, 5}, {4, 6, 3, 3}, {1, 1}, {0, 0}, {1, 1}, {2, 2}, 2},
  };
  uint64_t seed = 9600;
  for (const Case& c : cases) {
    INFO(c.name);
    const Tensor x = test::random_nonzero(c.x, seed++), w = test::random_nonzero(c.w, seed++);
    const int64_t c_out = c.transposed ? c.w[1] * c.groups : c.w[0];
    const Tensor b = test::random_nonzero({c_out}, seed++);
    auto run = [&](Device dev, Tensor* gx, Tensor* gw, Tensor* gb) {
      // detach(): x.to(kCPU) is x itself, and a leaf of the CPU pass must not make the GPU pass's
      // x.to(gpu()) a differentiable copy (whose .grad() would stay undefined).
      Tensor xd = x.to(dev).detach().set_requires_grad(), wd = w.to(dev).detach().set_requires_grad(),
             bd = b.to(dev).detach().set_requires_grad();
      const Tensor y = c.transposed ? conv_transpose2d(xd, wd, bd, c.stride, c.padding, c.output_padding, c.dilation, c.groups)
                                    : conv2d(xd, wd, bd, c.stride, c.padding, c.dilation, c.groups);
      const Tensor r = test::random_nonzero(y.shape(), 9700).to(dev);  // same weights on both devices
      sum(y * r).backward();
      *gx = xd.grad();
      *gw = wd.grad();
      *gb = bd.grad();
      return y;
    };
    Tensor gxc, gwc, gbc, gxg, gwg, gbg;
    const Tensor yc = run(kCPU, &gxc, &gwc, &gbc);
    const Tensor yg = run(gpu(), &gxg, &gwg, &gbg);
    // Sums of up to 8 * 9 (forward / input gradient) and 2 * 14 * 14 * 3 (weight gradient)
    // products of values below 3, times the loss weights r (below 3): 2e-6 * terms * 27.
    check_close(yg, yc, 2e-6 * 72 * 9, 1e-5, "output");
    check_close(gxg, gxc, 2e-6 * 72 * 27, 1e-5, "x grad");
    check_close(gwg, gwc, 2e-6 * 1200 * 27, 1e-5, "w grad");
    check_close(gbg, gbc, 2e-6 * 1200 * 3, 1e-5, "b grad");
  }
}

TEST_CASE("cuda: deterministic cuDNN algorithms repeat bit for bit; the benchmark switch runs", "[cuda][conv]") {
  GNDET_REQUIRE_CUDA();
  if (!GNDET_WITH_CUDNN) {
    return test::skip(std::string("cuDNN: this build has none") +
                      (cuda::is_emulated() ? " (the emulated device's convolutions take the own GEMM path)" : ""));
  }
  autograd::NoGradGuard no_grad;
  test::NoTf32Guard fp32;
  const ConvCase c = kCases[4];  // grouped 3x3: the weight gradient is where algorithms use atomics
  const Tensor x = test::random_nonzero(c.x, 9800).to(gpu()), dy = test::random_nonzero(out_shape(c), 9801).to(gpu());
  const Tensor w = test::random_nonzero(c.w, 9802);
  {
    const cuda::CudnnDeterministicGuard det(true);
    Tensor a = test::poisoned(c.w, TensorOptions(kFloat32, gpu())), b = test::poisoned(c.w, TensorOptions(kFloat32, gpu()));
    conv2d_backward_weight_kernel(gpu(), a, dy, x, c.p);
    conv2d_backward_weight_kernel(gpu(), b, dy, x, c.p);
    test::check_equal(a, b, "two deterministic weight gradients");
  }
  {
    // cudnnFind*Ex times the candidates, writing into the output while it searches: the result
    // must still be the convolution.
    const cuda::CudnnBenchmarkGuard bench(true);
    Tensor yc = test::poisoned(out_shape(c), TensorOptions(kFloat32));
    Tensor yg = test::poisoned(out_shape(c), TensorOptions(kFloat32, gpu()));
    conv2d_forward_kernel(kCPU, yc, x.cpu(), w, Tensor(), c.p);
    conv2d_forward_kernel(gpu(), yg, x, w.to(gpu()), Tensor(), c.p);
    check_close(yg, yc, atol_for(kFloat32, 36), rtol_for(kFloat32), "benchmarked forward");
  }
}
