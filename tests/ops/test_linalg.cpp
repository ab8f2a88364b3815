// matmul and bmm on small cases, and a large GEMM against a naive product in double.
#include <cmath>

#include "ops/elementwise.h"
#include "ops/join.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VD = std::vector<double>;

TEST_CASE("matmul and bmm, including transposed operands", "[ops]") {
  const Tensor a = from_data<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = from_data<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  CHECK(matmul(a, b).to_vector<float>() == V{4, 5, 10, 11});
  CHECK(matmul(a, a.t()).to_vector<float>() == V{14, 32, 32, 77});
  CHECK(matmul(a.t(), a).shape() == Shape{3, 3});
  const Tensor batched = stack({a, a * 2.0});  // (2, 2, 3)
  CHECK(matmul(batched, b).to_vector<float>() == V{4, 5, 10, 11, 8, 10, 20, 22});
  CHECK(bmm(batched, stack({b, b})).shape() == Shape{2, 2, 2});
  CHECK(matmul(zeros({2, 0}), zeros({0, 3})).to_vector<float>() == V(6, 0.0f));
  CHECK_THROWS_WITH(matmul(a, a), Catch::Contains("do not multiply"));
}

TEST_CASE("a large GEMM agrees with a naive double-precision product", "[ops]") {
  Generator g(5);
  const Tensor a = randn({67, 129}, g), b = randn({129, 33}, g);
  const Tensor c = matmul(a, b);
  const VD av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  double worst = 0;
  for (int i = 0; i < 67; ++i) {
    for (int j = 0; j < 33; ++j) {
      double s = 0;
      for (int k = 0; k < 129; ++k) s += av[i * 129 + k] * bv[k * 33 + j];
      worst = std::max(worst, std::abs(s - cv[i * 33 + j]));
    }
  }
  CHECK(worst < 1e-4);  // float32 sums of 129 products of N(0,1) values: rounding ~ 1e-6 * sqrt(129) * |terms|
}

TEST_CASE("float32 products large enough to be split between threads agree with float64", "[ops]") {
  // The float32 GEMM (ops/cpu/gemm.h) splits one product by columns when it has at least as many
  // columns as rows, else by rows, in whole micro-kernel panels; batches go to threads whole. Run
  // with OMP_NUM_THREADS=1, 2 and 3 for even and uneven splits.
  Generator g(6);
  struct Case {
    int64_t B, M, K, N;
    bool ta, tb;  // operands given transposed (column-major)
  };
  const Case cases[] = {{1, 100, 300, 1000, false, false}, {1, 1000, 300, 100, false, true},
                        {1, 333, 257, 205, true, false},   {3, 70, 200, 130, true, true}};
  for (const Case& c : cases) {
    INFO("B " << c.B << " M " << c.M << " K " << c.K << " N " << c.N << " transposed " << c.ta << c.tb);
    const Tensor a = c.ta ? randn({c.B, c.K, c.M}, g).transpose(1, 2) : randn({c.B, c.M, c.K}, g);
    const Tensor b = c.tb ? randn({c.B, c.N, c.K}, g).transpose(1, 2) : randn({c.B, c.K, c.N}, g);
    const Tensor want = bmm(a.to(kFloat64), b.to(kFloat64));
    // float32 sums of K <= 300 products of N(0, 1) values (|sum| ~ 17): rounding ~ 300 2^-24 17 = 3e-4 at worst.
    CHECK(test::max_abs_diff(bmm(a, b).to(kFloat64), want) < 1e-3);
  }
}
