// gndet coco-eval: scores a COCO results file against a ground-truth annotation file and prints
// the 12 lines of pycocotools' COCOeval.summarize().
#include <chrono>
#include <cstdio>
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "data/coco_eval.h"

namespace gndet::app {
namespace {

int run_coco_eval(const Args& args) {
  ArgParser p("gndet coco-eval",
              "Evaluates detections (a COCO results JSON list) against COCO ground truth, as pycocotools'\n"
              "COCOeval does, and prints its 12 summary lines. By default a detection's area follows\n"
              "pycocotools' loadRes on the file as given (w * h when the results carry boxes); with\n"
              "--mmdet-segm-area, segm results are scored by mask area, as mmdetection does.");
  p.option("--gt", "GT.json", "ground-truth COCO instances file")
      .option("--dt", "DT.json", "results file: [{image_id, category_id, bbox, score, segmentation}, ...]")
      .option("--iou-type", "TYPE", "bbox or segm", "bbox")
      .flag("--mmdet-segm-area", "segm: ignore the results' boxes, so areas are mask areas (mmdetection)")
      .option("--threads", "N", "OpenMP threads (0: all cores)", "0")
      .flag("--time", "print load and evaluation times to stderr")
      .example("gndet coco-eval --gt annotations/instances_val2017.json --dt results.bbox.json --iou-type bbox");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  if (!p.has("--gt") || !p.has("--dt")) throw UsageError("gndet coco-eval: --gt and --dt are required");
  data::EvalOptions options;
  options.iou_type = data::parse_iou_type(p.get("--iou-type"));
  options.mmdet_segm_area = p.has("--mmdet-segm-area");
  options.results_name = p.get("--dt");
  options.num_threads = static_cast<int>(p.get_int("--threads"));

  using Clock = std::chrono::steady_clock;
  const auto t0 = Clock::now();
  const data::CocoInstances gt = data::CocoInstances::load(p.get("--gt"));
  const std::vector<data::Detection> dets = data::read_detections(p.get("--dt"));
  const auto t1 = Clock::now();
  const data::EvalResult result = data::evaluate(gt, dets, options);
  const auto t2 = Clock::now();
  std::cout << result.summary << std::flush;
  if (p.has("--time")) {
    std::fprintf(stderr,
                 "coco-eval: loaded %zu images, %zu annotations, %zu detections in %.2f s; evaluated in %.2f s\n",
                 gt.images().size(), gt.annotations().size(), dets.size(),
                 std::chrono::duration<double>(t1 - t0).count(), std::chrono::duration<double>(t2 - t1).count());
  }
  return 0;
}

}  // namespace

GNDET_COMMAND("coco-eval", "COCO bbox / segm evaluation of a results file (pycocotools' numbers)", run_coco_eval);

}  // namespace gndet::app
