// Reductions over any dims, and their accuracy in float32.
#include <cmath>

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VI = std::vector<int64_t>;

TEST_CASE("reductions over any dims", "[ops]") {
  const Tensor x = arange(0.0, 24.0, 1.0, kFloat32).reshape({2, 3, 4});
  CHECK(sum(x).item<float>() == 276.0f);
  CHECK(sum(x, {0}).to_vector<float>()[0] == 12.0f);                       // column path
  CHECK(sum(x, {2}).to_vector<float>() == V{6, 22, 38, 54, 70, 86});         // row path
  CHECK(sum(x, {0, 2}).to_vector<float>() == V{60, 92, 124});               // general path
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(sum(x, {-1, 0}).shape() == Shape{3});
  CHECK(mean(x, {1, 2}).to_vector<float>() == V{5.5, 17.5});
  CHECK(var(from_data<double>({1, 2, 3, 4})).item<double>() == Approx(5.0 / 3.0).epsilon(1e-15));
  CHECK(var(from_data<double>({1, 2, 3, 4}), {}, false).item<double>() == 1.25);
  const ValuesIndices m = max(from_data<float>({3, 7, 7, 1, 9, 2}, {2, 3}), 1);
  CHECK(m.values.to_vector<float>() == V{7, 9});
  CHECK(m.indices.to_vector<int64_t>() == VI{1, 1});  // the first of equal maxima
  CHECK(min(from_data<float>({3, 7, 1, 9}, {2, 2}), 0).indices.to_vector<int64_t>() == VI{1, 0});
  CHECK(argmax(from_data<float>({0, 5, 5, 2}), 0).item<int64_t>() == 1);
  CHECK(max(x).item<float>() == 23.0f);
  CHECK(std::isnan(max(from_data<float>({1, NAN, 3})).item<float>()));
  CHECK(sum(from_data<bool>({true, true, false})).item<int64_t>() == 2);
  CHECK(sum(zeros({0, 3}), {0}).to_vector<float>() == V{0, 0, 0});
  CHECK_THROWS_WITH(max(zeros({0}), 0), Catch::Contains("empty dimension"));
  CHECK_THROWS_WITH(sum(x, {3}), Catch::Contains("sum: dimension 3 out of range"));
}

TEST_CASE("large float32 sums are accurate (double accumulation)", "[ops]") {
  const Tensor x = full({1 << 22}, 0.1);  // 4M elements
  CHECK(sum(x).item<float>() == Approx(419430.4).epsilon(1e-6));
}
