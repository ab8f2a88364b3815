// CUDA parity of softmax / log_softmax and their backward, on poisoned outputs, for rows that go
// to a warp (<= 1024) and to a block, and through autograd along a middle dimension.
// Tolerances: the GPU sums exp in float (the CPU in double) and uses expf. A float sum of n
// positive terms is within (n - 1) * 6e-8 relative; a thread adds up to ~80 terms before the tree,
// so probabilities agree to 1e-5 relative + 1e-7 absolute, log-probabilities (magnitudes up to
// ~10) to 1e-5 absolute. float64: 1e-12.
#include <cmath>

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::gpu;

TEST_CASE("cuda parity: softmax and log_softmax rows, forward and backward kernels", "[cuda][softmax]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const std::vector<Shape> shapes = {{1, 1}, {5, 7}, {1000, 81}, {3, 1024}, {4, 1025}, {2, 20000}};
  uint64_t seed = 7000;
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const Shape& s : shapes) {
      for (const bool log : {false, true}) {
        INFO(dtype_name(dt) << " " << shape_str(s) << (log ? " log_softmax" : " softmax"));
        // Logits in [-8, 8) around an offset of 20: the max subtraction must do its job.
        const Tensor x = test::random_nonzero(s, seed++, dt, 0.0, 8.0) + 20.0;
        const bool f32 = dt == kFloat32;
        const double atol = f32 ? (log ? 1e-5 : 1e-7) : 1e-12, rtol = f32 ? 1e-5 : 1e-12;

        Tensor yc = test::poisoned(s, TensorOptions(dt)), yg = test::poisoned(s, TensorOptions(dt, gpu()));
        softmax_rows_kernel(kCPU, yc, x, log);
        softmax_rows_kernel(gpu(), yg, x.to(gpu()), log);
        check_close(yg, yc, atol, rtol, "forward");

        // Backward from the CPU's y on both devices, so that only the backward kernel differs.
        const Tensor g = test::random_nonzero(s, seed++, dt);
        Tensor gc = test::poisoned(s, TensorOptions(dt)), gg = test::poisoned(s, TensorOptions(dt, gpu()));
        softmax_backward_rows_kernel(kCPU, gc, g, yc, log);
        softmax_backward_rows_kernel(gpu(), gg, g.to(gpu()), yc.to(gpu()), log);
        // |gi| involves sum(g * y) (or sum(g), up to R * 3 for log_softmax): absolute error scales
        // with that sum's size.
        const double sum_scale = log ? 3.0 * static_cast<double>(s[1]) : 3.0;
        check_close(gg, gc, (f32 ? 2e-6 : 1e-12) * sum_scale, rtol, "backward");
      }
    }
  }
}

TEST_CASE("cuda parity: softmax of rows holding NaN or -inf", "[cuda][softmax]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const float inf = INFINITY;
  const Tensor x = from_data<float>({1, NAN, 2, 3, /**/ -inf, 1, 2, 0, /**/ 0.5, 0.25, -inf, -1}, {3, 4});
  for (const bool log : {false, true}) {
    INFO((log ? "log_softmax" : "softmax"));
    Tensor yc = test::poisoned({3, 4}, TensorOptions(kFloat32)), yg = test::poisoned({3, 4}, TensorOptions(kFloat32, gpu()));
    softmax_rows_kernel(kCPU, yc, x, log);
    softmax_rows_kernel(gpu(), yg, x.to(gpu()), log);
    check_close(yg, yc, 1e-6, 1e-6);  // row 0 all NaN on both; -inf gives 0 (or -inf)
  }
}

TEST_CASE("cuda parity: softmax and log_softmax with autograd along a middle dimension", "[cuda][softmax][autograd]") {
  GNDET_REQUIRE_CUDA();
  const Tensor xc = test::random_nonzero({3, 50, 4}, 7100);
  const Tensor w = test::random_nonzero({3, 50, 4}, 7101);
  Tensor x1 = xc.clone().set_requires_grad();
  Tensor x2 = xc.to(gpu()).set_requires_grad();
  auto f = [&](const Tensor& x) {
    const Tensor wd = w.to(x.device());
    return sum(softmax(x, 1) * wd) + sum(log_softmax(x, 1) * wd) * 0.1;
  };
  const Tensor y1 = f(x1), y2 = f(x2);
  check_close(y2, y1, 1e-5, 1e-5, "forward");
  y1.backward();
  y2.backward();
  check_close(x2.grad(), x1.grad(), 1e-5, 1e-5, "grad");
}
