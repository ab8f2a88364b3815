// sort, argsort and topk.
#include <cmath>

#include "ops/reduce.h"
#include "ops/sort.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VI = std::vector<int64_t>;

TEST_CASE("sort, argsort and topk: stable, NaN largest", "[ops]") {
  const Tensor x = from_data<float>({3, 1, 2, 1, NAN, 0});
  const ValuesIndices asc = sort(x);
  CHECK(asc.indices.to_vector<int64_t>() == VI{5, 1, 3, 2, 0, 4});
  const ValuesIndices desc = sort(x, 0, true);
  CHECK(desc.indices.to_vector<int64_t>() == VI{4, 0, 2, 1, 3, 5});
  const ValuesIndices top = topk(from_data<float>({5, 1, 5, 3}), 3);
  CHECK(top.values.to_vector<float>() == V{5, 5, 3});
  CHECK(top.indices.to_vector<int64_t>() == VI{0, 2, 3});
  CHECK(topk(from_data<float>({5, 1, 5, 3}), 2, 0, false).indices.to_vector<int64_t>() == VI{1, 3});
  const Tensor m = from_data<float>({3, 1, 2, 9, 7, 8}, {2, 3});
  CHECK(sort(m, 0, true).indices.to_vector<int64_t>() == VI{1, 1, 1, 0, 0, 0});
  CHECK(argsort(m, 1).to_vector<int64_t>() == VI{1, 2, 0, 1, 2, 0});
  CHECK_THROWS_WITH(topk(m, 4), Catch::Contains("topk: k = 4"));
}
