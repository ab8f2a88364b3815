// cat, stack and split.

#include "ops/join.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;

TEST_CASE("cat, stack and split", "[ops]") {
  const Tensor a = from_data<float>({1, 2, 3, 4}, {2, 2});
  const Tensor b = from_data<float>({5, 6}, {2, 1});
  CHECK(cat({a, b}, 1).to_vector<float>() == V{1, 2, 5, 3, 4, 6});
  CHECK(cat({a, a}, 0).shape() == Shape{4, 2});
  CHECK(stack({a, a}, 2).shape() == Shape{2, 2, 2});
  const Tensors parts = split(arange(0.0, 7.0, 1.0, kFloat32), 3);
  REQUIRE(parts.size() == 3);
  CHECK(parts[2].to_vector<float>() == V{6});
  CHECK(split(a, {1, 1}, 1)[1].contiguous().to_vector<float>() == V{2, 4});
  CHECK_THROWS_WITH(cat({a, b}, 0), Catch::Contains("cat: tensor 1 has shape (2, 1)"));
  CHECK_THROWS_WITH(split(a, {1, 2}, 0), Catch::Contains("sizes sum to 3"));
}
