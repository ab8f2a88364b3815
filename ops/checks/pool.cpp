// Gradcheck cases for max_pool2d and the resize ops. Max pooling uses distinct input values, so
// that no window has a tie (where the gradient is not defined).
#include "ops/checks/check_util.h"
#include "ops/pool.h"
#include "ops/resize.h"

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

GNDET_GRADCHECK("upsample_nearest", "integer factor 2") {
  return gradcheck([](T in) { return upsample_nearest(in[0], 2); }, {uniform({2, 3, 3, 2}, 150)});
}
GNDET_GRADCHECK("upsample_nearest", "explicit size (5, 7) from (3, 3), non-integer ratio") {
  return gradcheck([](T in) { return upsample_nearest(in[0], 5, 7); }, {uniform({1, 2, 3, 3}, 151)});
}
GNDET_GRADCHECK("upsample_nearest", "down-sampling (2, 3) from (5, 6)") {
  return gradcheck([](T in) { return upsample_nearest(in[0], 2, 3); }, {uniform({1, 2, 5, 6}, 152)});
}

GNDET_GRADCHECK("interpolate_bilinear", "up-sampling, align_corners false") {
  return gradcheck([](T in) { return interpolate_bilinear(in[0], 7, 5, false); }, {uniform({2, 2, 3, 4}, 153)});
}
GNDET_GRADCHECK("interpolate_bilinear", "up-sampling, align_corners true") {
  return gradcheck([](T in) { return interpolate_bilinear(in[0], 7, 5, true); }, {uniform({2, 2, 3, 4}, 154)});
}
GNDET_GRADCHECK("interpolate_bilinear", "down-sampling to (2, 1), both corner modes") {
  return gradcheck([](T in) { return interpolate_bilinear(in[0], 2, 1, false) + interpolate_bilinear(in[0], 2, 1, true); },
                   {uniform({1, 2, 5, 4}, 155)});
}

}  // namespace gndet::checks
