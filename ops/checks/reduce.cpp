// Gradcheck cases for reductions, indexing, sorting, softmax and matrix products.
#include "ops/checks/check_util.h"
#include "ops/index.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "ops/sort.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("sum", "all elements") {
  return gradcheck([](T in) { return sum(in[0]); }, {uniform({3, 4}, 40)});
}
GNDET_GRADCHECK("sum", "dims {0, 2} keepdim (column path)") {
  return gradcheck([](T in) { return sum(in[0], {0, 2}, true); }, {uniform({2, 3, 4}, 41)});
}
GNDET_GRADCHECK("sum", "dim 1 of a transposed view (row path after copy)") {
  return gradcheck([](T in) { return sum(in[0].t(), {1}); }, {uniform({4, 3}, 42)});
}
GNDET_GRADCHECK("mean", "dims {1, 2}") {
  return gradcheck([](T in) { return mean(in[0], {1, 2}); }, {uniform({2, 3, 4}, 43)});
}
GNDET_GRADCHECK("var", "unbiased over dim -1") {
  return gradcheck([](T in) { return var(in[0], {-1}); }, {uniform({3, 5}, 44)});
}
GNDET_GRADCHECK("var", "biased over everything") {
  return gradcheck([](T in) { return var(in[0], {}, false); }, {uniform({2, 3, 2}, 45)});
}
GNDET_GRADCHECK("max", "along dim 1, distinct values") {
  return gradcheck([](T in) { return max(in[0], 1).values; }, {distinct({3, 5}, 46)});
}
GNDET_GRADCHECK("max", "over all elements") {
  return gradcheck([](T in) { return max(in[0]); }, {distinct({2, 3}, 47)});
}
GNDET_GRADCHECK("min", "along dim 0 keepdim") {
  return gradcheck([](T in) { return min(in[0], 0, true).values; }, {distinct({4, 3}, 48)});
}
GNDET_GRADCHECK("index_select", "rows with a repeated index") {
  const Tensor idx = from_data<int64_t>({2, 0, 2});
  return gradcheck([idx](T in) { return index_select(in[0], 0, idx); }, {uniform({4, 3}, 49)});
}
GNDET_GRADCHECK("index_select", "middle dimension") {
  const Tensor idx = from_data<int64_t>({1, 1, 0});
  return gradcheck([idx](T in) { return index_select(in[0], 1, idx); }, {uniform({2, 3, 2}, 50)});
}
GNDET_GRADCHECK("gather", "dim 1 with repeats") {
  const Tensor idx = from_data<int64_t>({0, 2, 2, 1, 1, 0}, {2, 3});
  return gradcheck([idx](T in) { return gather(in[0], 1, idx); }, {uniform({2, 4}, 51)});
}
GNDET_GRADCHECK("scatter_add", "dim 0 into x, gradients to x and src") {
  const Tensor idx = from_data<int64_t>({0, 1, 0, 2, 2, 0}, {2, 3});
  return gradcheck([idx](T in) { return scatter_add(in[0], 0, idx, in[1]); }, {uniform({3, 3}, 52), uniform({2, 3}, 53)});
}
GNDET_GRADCHECK("masked_fill", "broadcast mask") {
  const Tensor mask = from_data<bool>({true, false, true}, {1, 3});
  return gradcheck([mask](T in) { return masked_fill(in[0], mask, 7.0); }, {uniform({2, 3}, 54)});
}
GNDET_GRADCHECK("sort", "descending along dim 0") {
  return gradcheck([](T in) { return sort(in[0], 0, true).values; }, {distinct({4, 3}, 55)});
}
GNDET_GRADCHECK("topk", "k = 2 along the last dim") {
  return gradcheck([](T in) { return topk(in[0], 2).values; }, {distinct({3, 5}, 56)});
}
GNDET_GRADCHECK("softmax", "dim -1") {
  return gradcheck([](T in) { return softmax(in[0], -1); }, {uniform({3, 5}, 57, -3.0, 3.0)});
}
GNDET_GRADCHECK("softmax", "dim 1 of a 3-d tensor") {
  return gradcheck([](T in) { return softmax(in[0], 1); }, {uniform({2, 4, 3}, 58, -3.0, 3.0)});
}
GNDET_GRADCHECK("log_softmax", "dim 0") {
  return gradcheck([](T in) { return log_softmax(in[0], 0); }, {uniform({4, 3}, 59, -3.0, 3.0)});
}
GNDET_GRADCHECK("bmm", "(2,3,4) @ (2,4,5)") {
  return gradcheck([](T in) { return bmm(in[0], in[1]); }, {uniform({2, 3, 4}, 60), uniform({2, 4, 5}, 61)});
}
GNDET_GRADCHECK("bmm", "matmul (2,3,4) @ (4,2) with a transposed operand") {
  return gradcheck([](T in) { return matmul(in[0], in[1].t()); }, {uniform({2, 3, 4}, 62), uniform({2, 4}, 63)});
}

}  // namespace gndet::checks
