// Gradcheck cases for softmax and log_softmax.
#include "ops/checks/check_util.h"
#include "ops/softmax.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("softmax", "dim -1") {
  return gradcheck([](T in) { return softmax(in[0], -1); }, {uniform({3, 5}, 57, -3.0, 3.0)});
}
GNDET_GRADCHECK("softmax", "dim 1 of a 3-d tensor") {
  return gradcheck([](T in) { return softmax(in[0], 1); }, {uniform({2, 4, 3}, 58, -3.0, 3.0)});
}
GNDET_GRADCHECK("log_softmax", "dim 0") {
  return gradcheck([](T in) { return log_softmax(in[0], 0); }, {uniform({4, 3}, 59, -3.0, 3.0)});
}

}  // namespace gndet::checks
