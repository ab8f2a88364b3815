// Gradcheck cases for sort and topk (distinct values: no ties).
#include "ops/checks/check_util.h"
#include "ops/sort.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("sort", "descending along dim 0") {
  return gradcheck([](T in) { return sort(in[0], 0, true).values; }, {distinct({4, 3}, 55)});
}
GNDET_GRADCHECK("topk", "k = 2 along the last dim") {
  return gradcheck([](T in) { return topk(in[0], 2).values; }, {distinct({3, 5}, 56)});
}

}  // namespace gndet::checks
