// CUDA parity of bmm (cuBLAS) with the CPU's Eigen GEMM for every operand layout the contract
// allows (row-major, transposed views, rows or columns of 1, a broadcast batch), in FP32 with TF32
// off and in FP64, on poisoned outputs; the TF32 switch; and matmul with autograd.
// Tolerances: FP32 dot products of length K differ by summation order only; that error is about
// sqrt(K) * 6e-8 * |partial sums|, far below the 1e-6 * K * max|a| * max|b| allowed (|a|, |b| < 3);
// FP64 the same with 1e-14.
#include <cmath>

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::gpu;

namespace {

struct GemmCase {
  const char* name;
  int64_t B, M, K, N;
  bool a_t, b_t;          // operand given as the transpose of a contiguous (B, K, M) / (B, N, K)
  bool broadcast_b = false;  // b is one matrix expanded over the batch (batch stride 0)
};

const std::vector<GemmCase> kCases = {
    {"row-major", 3, 17, 33, 9, false, false},
    {"a transposed", 3, 17, 33, 9, true, false},
    {"b transposed", 2, 16, 40, 24, false, true},
    {"both transposed", 2, 5, 7, 3, true, true},
    {"M = 1", 4, 1, 65, 12, false, false},
    {"N = 1", 4, 12, 65, 1, false, true},
    {"K = 1", 2, 6, 1, 7, true, false},
    {"broadcast b (batch stride 0)", 5, 8, 16, 4, false, false, true},
    {"one large product", 1, 300, 257, 129, false, false},
};

Tensor make_operand(const Tensor& dense_bkm, bool transposed) {
  return transposed ? dense_bkm.transpose(1, 2) : dense_bkm;
}

}  // namespace

TEST_CASE("cuda parity: bmm on every operand layout, FP32 (TF32 off) and FP64", "[cuda][linalg]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  test::NoTf32Guard fp32;
  uint64_t seed = 8000;
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const GemmCase& c : kCases) {
      INFO(dtype_name(dt) << " " << c.name);
      const Tensor a_store = test::random_nonzero(c.a_t ? Shape{c.B, c.K, c.M} : Shape{c.B, c.M, c.K}, seed++, dt);
      const Tensor a = make_operand(a_store, c.a_t);
      Tensor b;
      if (c.broadcast_b) {
        b = test::random_nonzero({1, c.K, c.N}, seed++, dt).expand({c.B, c.K, c.N});
      } else {
        b = make_operand(test::random_nonzero(c.b_t ? Shape{c.B, c.N, c.K} : Shape{c.B, c.K, c.N}, seed++, dt), c.b_t);
      }
      Tensor oc = test::poisoned({c.B, c.M, c.N}, TensorOptions(dt));
      Tensor og = test::poisoned({c.B, c.M, c.N}, TensorOptions(dt, gpu()));
      bmm_kernel(kCPU, oc, a, b);
      bmm_kernel(gpu(), og, test::mirror(a, gpu()), test::mirror(b, gpu()));
      const double tol = (dt == kFloat32 ? 1e-6 : 1e-14) * static_cast<double>(c.K) * 9.0;
      check_close(og, oc, tol, 0.0);
    }
  }
}

TEST_CASE("cuda: the TF32 switch: FP32 exact to rounding, TF32 close", "[cuda][linalg]") {
  GNDET_REQUIRE_CUDA();
  const Tensor a = test::random_nonzero({1, 256, 512}, 8100);
  const Tensor b = test::random_nonzero({1, 512, 256}, 8101);
  const Tensor ref = bmm(a.to(kFloat64), b.to(kFloat64));
  const Tensor ag = a.to(gpu()), bg = b.to(gpu());
  // Relative Frobenius error against an FP64 product.
  auto rel_err = [&](const Tensor& out) {
    const Tensor d = out.cpu().to(kFloat64) - ref;
    return std::sqrt(sum(d * d).item<double>() / sum(ref * ref).item<double>());
  };
  const bool prev = cuda::allow_tf32();
  cuda::set_allow_tf32(false);
  CHECK_FALSE(cuda::allow_tf32());
  const double e32 = rel_err(bmm(ag, bg));
  cuda::set_allow_tf32(true);
  CHECK(cuda::allow_tf32());
  const double etf32 = rel_err(bmm(ag, bg));
  cuda::set_allow_tf32(prev);
  INFO("FP32 relative error " << e32 << ", TF32 " << etf32);
  CHECK(e32 < 1e-6);    // float32 rounding of sums of 512 products
  CHECK(etf32 < 2e-3);  // TF32 keeps 10 mantissa bits of each operand: ~5e-4 per product
}

TEST_CASE("cuda parity: matmul forward and backward", "[cuda][linalg][autograd]") {
  GNDET_REQUIRE_CUDA();
  test::NoTf32Guard fp32;
  const Tensor ac = test::random_nonzero({2, 3, 20, 30}, 8200);
  const Tensor bc = test::random_nonzero({30, 10}, 8201);
  const Tensor cc = test::random_nonzero({2, 3, 10, 20}, 8202);
  auto f = [](const Tensor& a, const Tensor& b, const Tensor& c) {
    return sum(matmul(matmul(a, b), c) * 0.01) + sum(matmul(a.transpose(-1, -2), a));
  };
  Tensor a1 = ac.clone().set_requires_grad(), b1 = bc.clone().set_requires_grad(), c1 = cc.clone().set_requires_grad();
  Tensor a2 = ac.to(gpu()).set_requires_grad(), b2 = bc.to(gpu()).set_requires_grad(), c2 = cc.to(gpu()).set_requires_grad();
  const Tensor y1 = f(a1, b1, c1), y2 = f(a2, b2, c2);
  check_close(y2, y1, 1e-2, 1e-5, "forward");  // a sum of ~10^4 products of size ~10
  y1.backward();
  y2.backward();
  // Gradients are GEMMs of length <= 60 over values below ~100: 1e-4 relative.
  check_close(a2.grad(), a1.grad(), 1e-3, 1e-4, "grad a");
  check_close(b2.grad(), b1.grad(), 1e-3, 1e-4, "grad b");
  check_close(c2.grad(), c1.grad(), 1e-3, 1e-4, "grad c");
}
