// Gradcheck cases for linear.
#include "ops/checks/check_util.h"
#include "ops/linear.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("linear", "(2, 3, 5) input, bias") {
  return gradcheck([](T in) { return linear(in[0], in[1], in[2]); },
                   {uniform({2, 3, 5}, 130), uniform({4, 5}, 131), uniform({4}, 132)});
}
GNDET_GRADCHECK("linear", "transposed 2-d input, no bias") {
  return gradcheck([](T in) { return linear(in[0].t(), in[1], Tensor()); }, {uniform({3, 4}, 133), uniform({2, 3}, 134)});
}

}  // namespace gndet::checks
