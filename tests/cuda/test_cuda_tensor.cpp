// CUDA device tensors: availability, transfers in every direction (strided, broadcast, converting,
// large enough for the staged path), fill, pinned memory, streams, and device mismatches.
#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tensor/kernels.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_equal;
using test::gpu;

TEST_CASE("cuda: devices are visible and a missing one is named in the error", "[cuda][tensor]") {
  GNDET_REQUIRE_CUDA();
  CHECK(cuda::is_built());
  CHECK(cuda::device_count() >= 1);
  const int n = cuda::device_count();
  CHECK_THROWS_WITH(empty({2}, Device::cuda(n)), Catch::Contains("cuda:" + std::to_string(n)));
  cuda::synchronize(0);
  const Tensor t = zeros({3}, gpu());
  CHECK(t.is_cuda());
  CHECK(t.device() == gpu());
}

TEST_CASE("cuda: host -> device -> host round trips are exact for every dtype and size", "[cuda][tensor]") {
  GNDET_REQUIRE_CUDA();
  // 0 elements, a scalar, odd sizes, and 3M elements (12 MB of float: the pinned staging path
  // with a partial last chunk in both directions).
  const std::vector<Shape> shapes = {{0, 3}, {}, {1}, {7, 13}, {3000001}};
  uint64_t seed = 100;
  for (const DType dt : test::all_dtypes()) {
    for (const Shape& s : shapes) {
      INFO(dtype_name(dt) << " " << shape_str(s));
      const Tensor host = test::random_nonzero(s, seed++, dt);
      const Tensor dev = host.to(gpu());
      CHECK(dev.is_cuda());
      CHECK(dev.shape() == s);
      check_equal(dev.cpu(), host);
    }
  }
}

TEST_CASE("cuda: copy_ into poisoned destinations, every direction, strided, broadcast, converting", "[cuda][tensor]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const Tensor src_f = test::random_nonzero({4, 6}, 1);
  const Tensor src_d = test::random_nonzero({4, 6}, 2, kFloat64);
  const Tensor src_i = test::random_nonzero({4, 6}, 3, kInt64, 1, 90);
  const Tensor row = test::random_nonzero({1, 6}, 4);

  // Each case: the destination's shape / dtype and how to view it, the source; the reference is
  // the same copy_ done entirely on the CPU.
  struct Case {
    const char* name;
    Tensor src;     // on the CPU; moved to the GPU where the case says so
    DType dst_dtype;
    bool dst_transposed;  // write through a transposed (non-contiguous) view of a (6, 4) tensor
    bool src_on_gpu, dst_on_gpu, src_transposed;
  };
  const std::vector<Case> cases = {
      {"H2D same dtype", src_f, kFloat32, false, false, true, false},
      {"H2D double -> float", src_d, kFloat32, false, false, true, false},
      {"H2D broadcast row", row, kFloat32, false, false, true, false},
      {"H2D into a transposed view", src_f, kFloat32, true, false, true, false},
      {"H2D from a transposed host view", src_f, kFloat32, false, false, true, true},
      {"D2H same dtype", src_f, kFloat32, false, true, false, false},
      {"D2H float -> double", src_f, kFloat64, false, true, false, false},
      {"D2H int64 -> float into a transposed view", src_i, kFloat32, true, true, false, false},
      {"D2H broadcast row", row, kFloat64, false, true, false, false},
      {"D2D same dtype (memcpy)", src_f, kFloat32, false, true, true, false},
      {"D2D float -> int64", src_f, kInt64, false, true, true, false},
      {"D2D float -> bool", src_f, kBool, false, true, true, false},
      {"D2D int64 -> uint8", src_i, kUInt8, false, true, true, false},
      {"D2D transposed source", src_f, kFloat32, false, true, true, true},
      {"D2D into a transposed view", src_d, kFloat64, true, true, true, false},
      {"D2D broadcast row, converting", row, kFloat64, true, true, true, false},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    Tensor src_cpu = c.src_transposed ? c.src.reshape({6, 4}).t() : c.src;  // same (4, 6) shape, strided
    const Tensor src = c.src_on_gpu ? src_cpu.to(gpu()) : src_cpu;
    const Shape base = c.dst_transposed ? Shape{6, 4} : Shape{4, 6};
    Tensor dst_base = test::poisoned(base, TensorOptions(c.dst_dtype, c.dst_on_gpu ? gpu() : kCPU));
    Tensor dst = c.dst_transposed ? dst_base.t() : dst_base;
    Tensor ref = test::poisoned(base, TensorOptions(c.dst_dtype));
    Tensor ref_view = c.dst_transposed ? ref.t() : ref;
    ref_view.copy_(src_cpu);
    dst.copy_(src);
    check_equal(dst_base.cpu(), ref);
  }
}

TEST_CASE("cuda: fill_ writes every element of strided views in every dtype", "[cuda][tensor]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  for (const DType dt : test::all_dtypes()) {
    for (const double v : {0.0, -0.0, 3.0, 1.0}) {  // 0: the memset path; -0.0: must keep its sign
      INFO(dtype_name(dt) << " value " << v);
      Tensor d = test::poisoned({5, 8}, TensorOptions(dt, gpu()));
      Tensor h = test::poisoned({5, 8}, TensorOptions(dt));
      d.fill_(v);
      h.fill_(v);
      check_equal(d.cpu(), h);
      // A strided view: every other column of rows 1..3 only.
      Tensor d2 = test::poisoned({5, 8}, TensorOptions(dt, gpu()));
      Tensor h2 = test::poisoned({5, 8}, TensorOptions(dt));
      d2.narrow(0, 1, 3).slice(1, 0, 8, 2).fill_(v);
      h2.narrow(0, 1, 3).slice(1, 0, 8, 2).fill_(v);
      check_equal(d2.cpu(), h2);
    }
  }
}

TEST_CASE("cuda: pinned host tensors transfer both ways", "[cuda][tensor]") {
  GNDET_REQUIRE_CUDA();
  Tensor pinned = cuda::empty_pinned({1 << 20});  // 4 MB: above the staging threshold
  CHECK(cuda::is_pinned(pinned));
  CHECK_FALSE(cuda::is_pinned(zeros({4})));
  const Tensor data = test::random_nonzero({1 << 20}, 7);
  {
    autograd::NoGradGuard no_grad;
    pinned.copy_(data);
  }
  const Tensor dev = pinned.to(gpu());
  Tensor back = cuda::empty_pinned({1 << 20});
  {
    autograd::NoGradGuard no_grad;
    back.copy_(dev);
  }
  check_equal(back, data);
}

TEST_CASE("cuda: to(device) is differentiable in both directions", "[cuda][tensor]") {
  GNDET_REQUIRE_CUDA();
  Tensor x = test::random_nonzero({3, 4}, 8).set_requires_grad();
  const Tensor y = (x.to(gpu()) * 3.0).to(kCPU);
  CHECK(y.device().is_cpu());
  sum(y).backward();
  REQUIRE(x.grad().defined());
  CHECK(x.grad().device().is_cpu());
  check_equal(x.grad(), full({3, 4}, 3.0));
}

TEST_CASE("cuda: work on a pool stream is ordered with wait_stream and record_stream", "[cuda][tensor]") {
  GNDET_REQUIRE_CUDA();
  const cuda::Stream main = cuda::current_stream(0);
  const cuda::Stream side = cuda::stream_from_pool(0);
  CHECK(main.handle == nullptr);  // the legacy default stream
  CHECK(side.handle != nullptr);
  const Tensor host = test::random_nonzero({1 << 18}, 9);
  Tensor on_side;
  {
    cuda::StreamGuard guard(side);
    CHECK(cuda::current_stream(0) == side);
    on_side = host.to(gpu()) * 2.0;  // allocated and computed on the side stream
  }
  CHECK(cuda::current_stream(0) == main);
  cuda::wait_stream(main, side);
  cuda::record_stream(on_side, main);
  const Tensor result = on_side + 1.0;  // on the main stream
  on_side = Tensor();                   // freed: its block waits for the main stream's work
  check_equal(result.cpu(), host * 2.0 + 1.0);
  cuda::synchronize_stream(side);
}

TEST_CASE("cuda: kernels refuse operands on another device", "[cuda][tensor][errors]") {
  GNDET_REQUIRE_CUDA();
  const Tensor a = ones({3}, gpu());
  const Tensor b = ones({3});
  CHECK_THROWS_WITH(a + b, Catch::Contains("cuda:0") && Catch::Contains("cpu"));
  Tensor out = empty({3}, gpu());
  CHECK_THROWS_WITH(binary_kernel(gpu(), BinaryOp::Add, out, a, b), Catch::Contains("cpu"));
}
