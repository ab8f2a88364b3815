// COCO detection evaluation (bbox and segm), pycocotools' COCOeval step for step:
//
//   loadRes   a detection's area is w * h when the results carry boxes (decided by the first
//             result, as pycocotools does) and its mask area otherwise; ids are 1..N in list order.
//   evaluate  per (image, category): detections sorted by score with a stable sort (numpy's
//             mergesort), kept up to maxDets[-1] = 100; IoU against every gt (crowd gt:
//             intersection over the detection's area); per area range, gts sorted by their ignore
//             flag (crowd, or area outside the range) with a stable sort; the greedy matching at
//             each IoU threshold; unmatched detections outside the area range ignored.
//   accumulate per (category, area range, maxDets): detections of all images merged by a stable
//             sort on score, cumulative TP / FP, the precision envelope, precision sampled at the
//             101 recall thresholds (numpy's searchsorted, side='left').
//   summarize the 12 numbers, each the mean over the entries that are not -1 (-1 when none).
//
// Thresholds are built the way numpy's linspace builds them (start + i * step, last = stop), so
// the floats, and the exact comparisons of summarize() against 0.5 and 0.75, are the same.
//
// Segm area convention. pycocotools' loadRes keeps the results' boxes when the first result has
// one and then takes w * h as the area even for segm evaluation; mmdetection's CocoMetric
// therefore deletes "bbox" from segm results first, so that the area is the mask area
// (mmdet_segm_area = true, the default of evaluate()). `gndet coco-eval` defaults to pycocotools'
// behaviour on the file as given (--mmdet-segm-area switches). Only the small/medium/large
// numbers can differ between the two.
//
// Deliberate differences, where pycocotools fails instead of answering: an empty results list
// evaluates as "no detections" (pycocotools raises IndexError) and segmentations given as
// polygons or uncompressed RLEs are accepted in results (rasterised at the image size).
#pragma once

#include <array>
#include <span>
#include <string>
#include <vector>

#include "data/coco.h"
#include "data/coco_results.h"

namespace gndet::data {

enum class IouType { Bbox, Segm };
const char* iou_type_name(IouType type);          // "bbox", "segm"
IouType parse_iou_type(const std::string& name);  // throws for anything else

struct EvalOptions {
  IouType iou_type = IouType::Bbox;
  bool mmdet_segm_area = true;              // see the header comment; used for segm only
  std::string results_name = "detections";  // names the results in error messages
  int num_threads = 0;                      // OpenMP threads; 0 = OpenMP's default
};

// The setting of pycocotools' Params for bbox / segm.
struct EvalParams {
  std::vector<double> iou_thresholds;     // linspace(.5, .95, 10)
  std::vector<double> recall_thresholds;  // linspace(0, 1, 101)
  std::array<int64_t, 3> max_dets = {1, 10, 100};
  std::array<std::array<double, 2>, 4> area_ranges = {{{0, 1e10}, {0, 1024}, {1024, 9216}, {9216, 1e10}}};
  std::array<const char*, 4> area_labels = {"all", "small", "medium", "large"};
};
const EvalParams& coco_eval_params();
// numpy.linspace(start, stop, num) with endpoint=True, bit for bit.
std::vector<double> numpy_linspace(double start, double stop, int64_t num);

struct EvalResult {
  // AP, AP50, AP75, AP_small, AP_medium, AP_large, AR1, AR10, AR100, AR_small, AR_medium, AR_large;
  // -1 where no ground truth defines the number.
  std::array<double, 12> stats{};
  std::string summary;  // the 12 lines of pycocotools' summarize(), each ending in '\n'
  // Raw arrays of accumulate(), row-major; -1 where a category has no (non-ignored) gt.
  // precision: (T=10, R=101, K, A=4, M=3); recall: (T, K, A, M). K follows sorted category ids.
  std::vector<double> precision;
  std::vector<double> recall;
  int64_t num_categories = 0;
};

// Throws gndet::Error when a detection names an image that is not in `gt` (pycocotools asserts
// "Results do not correspond to current coco set"), when detections lack the field the first one
// decided on (bbox or segmentation), or when segm is asked of detections without masks or boxes.
EvalResult evaluate(const CocoInstances& gt, std::span<const Detection> detections, const EvalOptions& options);

// The summary lines for 12 stats, formatted as summarize() prints them.
std::string format_summary(const std::array<double, 12>& stats);

}  // namespace gndet::data
