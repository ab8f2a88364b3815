// Gradcheck cases for the resize ops: upsample_nearest and interpolate_bilinear.
#include "ops/checks/check_util.h"
#include "ops/resize.h"

namespace gndet::checks {

using T = const Tensors&;

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
