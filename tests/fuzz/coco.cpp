// Fuzz target: the COCO instances reader, then what training reads from it (boxes, masks as RLE).
#include "data/coco.h"
#include "tests/fuzz/fuzz_target.h"

GNDET_FUZZ_TARGET(coco) {
  using namespace gndet::data;
  const CocoInstances coco = CocoInstances::load(gndet::fuzz::write_input_file(input, "instances.json"));
  for (int64_t i : select_train_images(coco, true, 0)) {
    const CocoImage& img = coco.images()[static_cast<size_t>(i)];
    for (int64_t a : parse_ann_info(coco, i).annotations) {
      const CocoAnnotation& ann = coco.annotations()[static_cast<size_t>(a)];
      if (ann.segmentation) rle_area(segmentation_to_rle(*ann.segmentation, img.height, img.width));
    }
  }
}
