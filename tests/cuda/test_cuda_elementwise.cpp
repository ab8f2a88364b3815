// CUDA parity of the elementwise kernels with the CPU kernels. The op lists come from the X-macro
// tables, so an op added there is tested here without any edit. Every output is poisoned before
// the kernel runs. Tolerances: float32 1e-5 relative (CUDA's expf / logf / tanhf / powf are
// within 2-4 ulp of glibc's, 1 ulp = 6e-8 relative) plus 1e-6 absolute for results near 0;
// float64 1e-13 relative for the same reason; integers and bools exact.
#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/optim_step.h"
#include "ops/reduce.h"
#include "tensor/strided.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::gpu;

namespace {

const std::vector<UnaryOp> kUnaryOps = {
#define GNDET_X(name) UnaryOp::name,
    GNDET_UNARY_OPS(GNDET_X)
#undef GNDET_X
};
const std::vector<BinaryOp> kBinaryOps = {
#define GNDET_X(name) BinaryOp::name,
    GNDET_BINARY_OPS(GNDET_X)
#undef GNDET_X
};

double atol_for(DType t) { return t == kFloat32 ? 1e-6 : (t == kFloat64 ? 1e-13 : 0.0); }
double rtol_for(DType t) { return t == kFloat32 ? 1e-5 : (t == kFloat64 ? 1e-13 : 0.0); }

// Layouts every kernel is run on: contiguous (odd length: vector body + scalar tail), a view
// starting one element in (misaligned: the scalar path), a transposed view (strided path), a
// 0-dim tensor and an empty one. Each maker returns a CPU view of `base`.
struct Layout {
  const char* name;
  Shape base;
  Tensor (*view)(const Tensor&);
};
const std::vector<Layout> kLayouts = {
    {"contiguous 4099", {4099}, [](const Tensor& t) { return t; }},
    {"misaligned (offset 1)", {4100}, [](const Tensor& t) { return t.narrow(0, 1, 4099); }},
    {"transposed (37, 53)", {53, 37}, [](const Tensor& t) { return t.t(); }},
    {"0-dim", {}, [](const Tensor& t) { return t; }},
    {"empty (0, 5)", {0, 5}, [](const Tensor& t) { return t; }},
};

// Runs `kernel(device, out, inputs...)` on the CPU and on the GPU with poisoned outputs of
// `out_shape` / `out_dtype`, then compares. A dtype the CPU kernel refuses must be refused on
// the GPU too.
template <class Run>
void compare(const Shape& out_shape, DType out_dtype, DType in_dtype, const std::vector<Tensor>& inputs, Run run) {
  Tensor out_cpu = test::poisoned(out_shape, TensorOptions(out_dtype));
  bool cpu_ok = true;
  try {
    run(kCPU, out_cpu, inputs);
  } catch (const Error&) {
    cpu_ok = false;
  }
  std::vector<Tensor> on_gpu;
  for (const Tensor& t : inputs) on_gpu.push_back(test::mirror(t, gpu()));  // same strides on the GPU
  Tensor out_gpu = test::poisoned(out_shape, TensorOptions(out_dtype, gpu()));
  if (!cpu_ok) {
    CHECK_THROWS_AS(run(gpu(), out_gpu, on_gpu), Error);
    return;
  }
  run(gpu(), out_gpu, on_gpu);
  check_close(out_gpu, out_cpu, atol_for(in_dtype), rtol_for(in_dtype));
}

}  // namespace

TEST_CASE("cuda parity: every unary op, every dtype, every layout", "[cuda][elementwise]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  // a = 2.75, b = 5.5 are valid for every op (clamp bounds, scalar operands, exponent) and survive
  // the conversion to integer types (2, 5). Inputs are signed: ops outside their domain (log,
  // sqrt, pow of negatives) must give NaN at the same places on both devices.
  const double a = 2.75, b = 5.5;
  uint64_t seed = 1000;
  for (const UnaryOp op : kUnaryOps) {
    for (const DType dt : test::all_dtypes()) {
      for (const Layout& lay : kLayouts) {
        INFO(op_name(op) << " " << dtype_name(dt) << " " << lay.name);
        const Tensor base = test::random_nonzero(lay.base, seed++, dt, 0.25, dt == kUInt8 ? 200 : 3.0);
        const Tensor in = lay.view(base);
        Tensor out_cpu = test::poisoned(in.shape(), TensorOptions(dt));
        bool cpu_ok = true;
        try {
          unary_kernel(kCPU, op, a, b, out_cpu, in);
        } catch (const Error&) {
          cpu_ok = false;
        }
        const Tensor in_gpu = lay.view(base.to(gpu()));
        Tensor out_gpu = test::poisoned(in.shape(), TensorOptions(dt, gpu()));
        if (!cpu_ok) {
          CHECK_THROWS_AS(unary_kernel(gpu(), op, a, b, out_gpu, in_gpu), Error);
          continue;
        }
        unary_kernel(gpu(), op, a, b, out_gpu, in_gpu);
        check_close(out_gpu, out_cpu, atol_for(dt), rtol_for(dt));
      }
    }
  }
}

TEST_CASE("cuda parity: every binary op, every dtype, with broadcasting and strided operands", "[cuda][elementwise]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  // (x shape, y shape, x transposed?) -> the output is their broadcast shape.
  struct Shapes {
    const char* name;
    Shape x, y;
    bool transpose_x;
  };
  const std::vector<Shapes> cases = {
      {"same shape, contiguous", {3001}, {3001}, false},
      {"broadcast (5,1,7) with (6,7)", {5, 1, 7}, {6, 7}, false},
      {"scalar right-hand side", {4, 9}, {}, false},
      {"transposed x with a row", {9, 4}, {1, 9}, true},
      {"empty", {0, 3}, {3}, false},
  };
  uint64_t seed = 2000;
  for (const BinaryOp op : kBinaryOps) {
    for (const DType dt : test::all_dtypes()) {
      for (const Shapes& c : cases) {
        INFO(op_name(op) << " " << dtype_name(dt) << " " << c.name);
        Tensor x = test::random_nonzero(c.x, seed++, dt, 0.25, dt == kUInt8 ? 200 : 3.0);
        Tensor y = test::random_nonzero(c.y, seed++, dt, 0.25, dt == kUInt8 ? 200 : 3.0);
        if (c.x == c.y) {  // every third element equal: ties for the comparisons and max / min
          y = y.contiguous();
          for (int64_t i = 0; i < y.numel(); i += 3) y.narrow(0, i, 1).copy_(x.narrow(0, i, 1));
        }
        if (c.transpose_x) x = x.t();
        const Shape out_shape = broadcast_shapes(x.shape(), y.shape(), "test");
        // The output dtype: whatever binary_raw would allocate (bool for comparisons and logic).
        const bool to_bool = op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le ||
                             op == BinaryOp::Gt || op == BinaryOp::Ge || op == BinaryOp::LogicalAnd ||
                             op == BinaryOp::LogicalOr;
        compare(out_shape, to_bool ? kBool : dt, dt, {x, y}, [&](Device d, Tensor& out, const std::vector<Tensor>& in) {
          binary_kernel(d, op, out, in[0], in[1]);
        });
      }
    }
  }
}

TEST_CASE("cuda parity: maximum and minimum propagate NaN from the left operand", "[cuda][elementwise]") {
  GNDET_REQUIRE_CUDA();
  const Tensor x = from_data<float>({NAN, 1, NAN, -2, 3});
  const Tensor y = from_data<float>({1, NAN, NAN, -2, 4});
  for (const BinaryOp op : {BinaryOp::Maximum, BinaryOp::Minimum}) {
    INFO(op_name(op));
    compare({5}, kFloat32, kFloat32, {x, y}, [&](Device d, Tensor& out, const std::vector<Tensor>& in) {
      binary_kernel(d, op, out, in[0], in[1]);
    });
  }
}

TEST_CASE("cuda parity: where on every dtype with broadcasting", "[cuda][elementwise]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 3000;
  for (const DType dt : test::all_dtypes()) {
    INFO(dtype_name(dt));
    const Tensor cond = test::random_nonzero({4, 1, 6}, seed++, kBool);
    const Tensor x = test::random_nonzero({5, 6}, seed++, dt);
    const Tensor y = test::random_nonzero({4, 5, 1}, seed++, dt);
    compare({4, 5, 6}, dt, dt, {cond, x, y}, [&](Device d, Tensor& out, const std::vector<Tensor>& in) {
      where_kernel(d, out, in[0], in[1], in[2]);
    });
    // Contiguous operands of one shape, long enough for the vector path.
    const Tensor c2 = test::random_nonzero({2053}, seed++, kBool);
    const Tensor x2 = test::random_nonzero({2053}, seed++, dt);
    const Tensor y2 = test::random_nonzero({2053}, seed++, dt);
    compare({2053}, dt, dt, {c2, x2, y2}, [&](Device d, Tensor& out, const std::vector<Tensor>& in) {
      where_kernel(d, out, in[0], in[1], in[2]);
    });
  }
}

TEST_CASE("cuda parity: elementwise forward and backward through autograd", "[cuda][elementwise][autograd]") {
  GNDET_REQUIRE_CUDA();
  // Every differentiable elementwise op once, broadcasting (4,1,5) against (3,5).
  auto f = [](const Tensor& x, const Tensor& y) {
    const Tensor pos = exp(y * 0.3);  // > 0: log, sqrt, rsqrt, pow stay real
    Tensor r = sigmoid(x) * tanh(y) + relu(x - y) / (1.0 + pos) + clamp(x, -0.5, 0.7) * abs(y);
    r = r + log(pos) + sqrt(pos) - rsqrt(pos) + pow(pos, 1.5) + pow(pos, exp(x * 0.1));
    r = r + maximum(x, y) - minimum(x * 2.0, y) + where(gt(x, y), x, y * 3.0) + 2.0 / pos - (-x) * 0.5;
    return r;
  };
  const Tensor xc = test::random_nonzero({4, 1, 5}, 41, kFloat32);
  const Tensor yc = test::random_nonzero({3, 5}, 42, kFloat32);
  const Tensor g = test::random_nonzero({4, 3, 5}, 43, kFloat32);
  Tensor x1 = xc.clone().set_requires_grad(), y1 = yc.clone().set_requires_grad();
  Tensor x2 = xc.to(gpu()).set_requires_grad(), y2 = yc.to(gpu()).set_requires_grad();
  const Tensor out_cpu = f(x1, y1), out_gpu = f(x2, y2);
  check_close(out_gpu, out_cpu, 1e-5, 1e-5, "forward");
  out_cpu.backward(g);
  out_gpu.backward(g.to(gpu()));
  // Gradients sum over the broadcast dims (a few terms of chained float32 math): 1e-4 relative.
  check_close(x2.grad(), x1.grad(), 1e-5, 1e-4, "grad x");
  check_close(y2.grad(), y1.grad(), 1e-5, 1e-4, "grad y");
}

TEST_CASE("cuda parity: in-place add_ and mul_ on strided views", "[cuda][elementwise]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  Tensor h = test::random_nonzero({6, 8}, 51);
  Tensor d = h.to(gpu());
  const Tensor upd = test::random_nonzero({8, 3}, 52);
  Tensor hv = h.narrow(1, 2, 3), dv = d.narrow(1, 2, 3);  // (6, 3) strided
  add_(hv, upd.narrow(0, 0, 6), -0.5);
  add_(dv, upd.narrow(0, 0, 6).to(gpu()), -0.5);
  mul_(hv, 1.25);
  mul_(dv, 1.25);
  // One multiply-add and one multiply per element: 1e-6 relative.
  check_close(d, h, 1e-6, 1e-6);
}

TEST_CASE("cuda parity: the fused SGD update, first and later steps, with and without momentum", "[cuda][elementwise][optim]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  for (const DType dtype : {kFloat32, kFloat64}) {
    for (const bool nesterov : {false, true}) {
      INFO(dtype_name(dtype) << ", nesterov " << nesterov);
      Tensor p_cpu = test::random_nonzero({3, 1000}, 61, dtype);  // 3000 values: several blocks
      Tensor p_gpu = p_cpu.to(gpu());
      // The first step writes the buffer without reading it: both start poisoned.
      Tensor buf_cpu = test::poisoned({3, 1000}, TensorOptions(dtype));
      Tensor buf_gpu = test::poisoned({3, 1000}, TensorOptions(dtype, gpu()));
      for (int it = 0; it < 3; ++it) {
        const Tensor g = test::random_nonzero({3, 1000}, 62 + it, dtype);
        const SgdStep step{.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-2, .nesterov = nesterov, .first = it == 0};
        sgd_step_(p_cpu, g, buf_cpu, step);
        sgd_step_(p_gpu, g.to(gpu()), buf_gpu, step);
      }
      // Without momentum the buffer is neither read nor written.
      Tensor none_cpu, none_gpu;
      const Tensor g = test::random_nonzero({3, 1000}, 70, dtype);
      sgd_step_(p_cpu, g, none_cpu, {.lr = 0.05, .weight_decay = 1e-3});
      sgd_step_(p_gpu, g.to(gpu()), none_gpu, {.lr = 0.05, .weight_decay = 1e-3});
      CHECK((!none_cpu.defined() && !none_gpu.defined()));
      // A few products and sums per step, which nvcc may fuse into FMAs (the CPU build keeps
      // them apart): a few ulp after four steps, 1e-6 / 1e-14 relative.
      const double tol = dtype == kFloat32 ? 1e-6 : 1e-14;
      check_close(buf_gpu, buf_cpu, tol, tol, "momentum buffer");
      check_close(p_gpu, p_cpu, tol, tol, "parameter");
    }
  }
}
