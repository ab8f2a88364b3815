// Gradcheck cases for max_pool2d. Max pooling uses distinct input values, so
// that no window has a tie (where the gradient is not defined).
#include "ops/checks/check_util.h"
#include "ops/pool.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("max_pool2d", "3x3 stride 2 padding 1 (ResNet stem)") {
  return gradcheck([](T in) { return max_pool2d(in[0], {3, 3}, {2, 2}, {1, 1}); }, {distinct({2, 2, 7, 6}, 140)});
}
GNDET_GRADCHECK("max_pool2d", "2x2 stride 2 ceil_mode on odd sizes") {
  return gradcheck([](T in) { return max_pool2d(in[0], {2, 2}, {2, 2}, {0, 0}, true); }, {distinct({1, 3, 5, 7}, 141)});
}
GNDET_GRADCHECK("max_pool2d", "kernel 1 stride 2 (FPN P6)") {
  return gradcheck([](T in) { return max_pool2d(in[0], {1, 1}, {2, 2}); }, {distinct({2, 2, 5, 4}, 142)});
}
GNDET_GRADCHECK("max_pool2d", "overlapping 3x2 windows, stride (1, 2)") {
  return gradcheck([](T in) { return max_pool2d(in[0], {3, 2}, {1, 2}, {1, 1}); }, {distinct({1, 2, 4, 5}, 143)});
}

}  // namespace gndet::checks
