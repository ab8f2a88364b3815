// linear by hand, with batch dimensions and without bias, and its errors.
#include <vector>

#include "ops/elementwise.h"
#include "ops/linear.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VD = std::vector<double>;

TEST_CASE("linear by hand, with batch dimensions and without bias", "[layers]") {
  const Tensor x = from_data<float>({1, 2, 3, 4, 5, 6}, {1, 2, 3});
  const Tensor w = from_data<float>({1, 0, -1, 2, 1, 0}, {2, 3});
  CHECK(linear(x, w, from_data<float>({10, 20})).to_vector<float>() == V{8, 24, 8, 33});
  CHECK(linear(x, w, Tensor()).shape() == Shape{1, 2, 2});
  Tensor xg = from_data<double>({1, 2, 3}, {1, 3}).set_requires_grad();
  Tensor wg = from_data<double>({1, 0, -1, 2, 1, 0}, {2, 3}).set_requires_grad();
  Tensor bg = zeros({2}, kFloat64).set_requires_grad();
  sum(linear(xg, wg, bg)).backward();
  CHECK(xg.grad().to_vector<double>() == VD{3, 1, -1});  // column sums of w
  CHECK(wg.grad().to_vector<double>() == VD{1, 2, 3, 1, 2, 3});
  CHECK(bg.grad().to_vector<double>() == VD{1, 1});
}

TEST_CASE("linear errors name the op, the shapes and what was expected", "[layers][errors]") {
  CHECK_THROWS_WITH(linear(zeros({2, 5}), zeros({3, 4}), Tensor()),
                    Catch::Contains("linear: input features 5 != weight's 4"));
}
