// Gradcheck cases for reductions: sum, mean, var, max, min.
#include "ops/checks/check_util.h"
#include "ops/reduce.h"

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

}  // namespace gndet::checks
