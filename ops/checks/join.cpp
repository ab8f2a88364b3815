// Gradcheck cases for joins: cat (and stack through it), split.
#include "ops/checks/check_util.h"
#include "ops/join.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("cat", "three tensors along dim 1, one used twice") {
  return gradcheck([](T in) { return cat({in[0], in[1], in[0]}, 1); }, {uniform({2, 2}, 80), uniform({2, 3}, 81)});
}
GNDET_GRADCHECK("cat", "stack along a new dim") {
  return gradcheck([](T in) { return stack({in[0], in[1]}, 1); }, {uniform({2, 3}, 82), uniform({2, 3}, 83)});
}
GNDET_GRADCHECK("split", "pieces 1,2,1 along dim 1, the last piece unused") {
  return autograd::gradcheck_outputs(
      [](T in) {
        const Tensors p = split(in[0], {1, 2, 1}, 1);
        return Tensors{p[0], p[1]};
      },
      {uniform({3, 4}, 84)});
}

}  // namespace gndet::checks
