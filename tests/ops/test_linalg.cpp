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
