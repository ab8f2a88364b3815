// Gradcheck cases for roi_align.
#include "ops/checks/check_util.h"
#include "ops/roi_align.h"

namespace gndet::checks {

namespace {
// RoIs with fractional corners, one partly outside the map, across two images.
Tensor test_rois() {
  return from_data<double>({0, 0.6, 1.3, 4.7, 5.2,   //
                            1, 2.1, 0.4, 3.9, 3.3,   //
                            0, -1.5, 3.0, 2.5, 7.5,  // crosses the border
                            1, 1.0, 1.0, 1.2, 1.1},  // smaller than a pixel
                           {4, 5});
}
GradcheckResult check(const RoIAlignParams& p) {
  const Tensor rois = on_check_device(test_rois());
  return gradcheck([rois, p](const Tensors& in) { return roi_align(in[0], rois, p); }, {uniform({2, 2, 6, 7}, 90)});
}
}  // namespace

GNDET_GRADCHECK("roi_align", "aligned, adaptive sampling (mmdetection)") {
  return check({3, 2, 1.0, 0, true});
}
GNDET_GRADCHECK("roi_align", "not aligned, sampling 2, scale 1/2 (Detectron)") {
  return check({2, 3, 0.5, 2, false});
}

}  // namespace gndet::checks
