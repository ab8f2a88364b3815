// Indexing ops on hand-checked cases, and their error messages.

#include "ops/elementwise.h"
#include "ops/index.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VI = std::vector<int64_t>;

TEST_CASE("index_select, gather, scatter_add, index_add, masked_fill, nonzero", "[ops]") {
  const Tensor x = from_data<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  CHECK(index_select(x, 0, from_data<int64_t>({2, 0})).to_vector<float>() == V{5, 6, 1, 2});
  CHECK(index_select(x, 1, from_data<int32_t>({1})).to_vector<float>() == V{2, 4, 6});
  CHECK(gather(x, 1, from_data<int64_t>({1, 0, 0}, {3, 1})).to_vector<float>() == V{2, 3, 5});
  CHECK(scatter_add(zeros({3}), 0, from_data<int64_t>({0, 2, 0}), from_data<float>({1, 2, 3})).to_vector<float>() ==
        V{4, 0, 2});
  CHECK(index_add(zeros({2, 2}), 0, from_data<int64_t>({1, 1}), ones({2, 2})).to_vector<float>() == V{0, 0, 2, 2});
  CHECK(masked_fill(x, from_data<bool>({true, false}, {1, 2}), -1).to_vector<float>() == V{-1, 2, -1, 4, -1, 6});
  CHECK(nonzero(from_data<float>({0, 1, 0, 2}, {2, 2})).to_vector<int64_t>() == VI{0, 1, 1, 1});
  CHECK(nonzero(zeros({3})).shape() == Shape{0, 1});
  CHECK(masked_select_rows(x, from_data<bool>({false, true, true})).to_vector<float>() == V{3, 4, 5, 6});
}

TEST_CASE("index errors name the op, the index and the range", "[ops][errors]") {
  const Tensor x = zeros({3, 2});
  CHECK_THROWS_WITH(index_select(x, 0, from_data<int64_t>({3})),
                    Catch::Contains("index_select: index 3 is out of range for a dimension of size 3"));
  CHECK_THROWS_WITH(index_select(x, 0, from_data<int64_t>({-1})), Catch::Contains("index -1"));
  CHECK_THROWS_WITH(gather(x, 1, from_data<int64_t>({5, 0, 0}, {3, 1})), Catch::Contains("gather: index 5"));
  CHECK_THROWS_WITH(gather(x, 1, from_data<int64_t>({0, 0}, {2, 1})), Catch::Contains("must match"));
  CHECK_THROWS_WITH(index_select(x, 0, from_data<float>({0})), Catch::Contains("index must be int64 or int32"));
  CHECK_THROWS_WITH(scatter_add(zeros({3}), 0, from_data<int64_t>({7}), ones({1})), Catch::Contains("scatter_add: index 7"));
}
