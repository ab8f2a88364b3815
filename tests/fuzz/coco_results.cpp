// Fuzz target: the COCO results reader (a JSON array of detections, parsed as a stream).
#include "data/coco_results.h"
#include "tests/fuzz/fuzz_target.h"

GNDET_FUZZ_TARGET(coco_results) {
  const auto dets = gndet::data::read_detections(gndet::fuzz::write_input_file(input, "results.json"));
  // What was read writes back and reads again to the same detections.
  const auto again = gndet::data::parse_detections(gndet::data::detections_to_json(dets), "again");
  GNDET_FUZZ_ASSERT(again.size() == dets.size());
}
