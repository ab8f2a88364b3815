// Gradcheck cases for matrix products (bmm, and matmul through it).
#include "ops/checks/check_util.h"
#include "ops/linalg.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("bmm", "(2,3,4) @ (2,4,5)") {
  return gradcheck([](T in) { return bmm(in[0], in[1]); }, {uniform({2, 3, 4}, 60), uniform({2, 4, 5}, 61)});
}
GNDET_GRADCHECK("bmm", "matmul (2,3,4) @ (4,2) with a transposed operand") {
  return gradcheck([](T in) { return matmul(in[0], in[1].t()); }, {uniform({2, 3, 4}, 62), uniform({2, 4}, 63)});
}

}  // namespace gndet::checks
