// Runs a detector over a dataset and scores it with the COCO evaluator (bbox, and segm for
// Mask R-CNN), as mmdetection's CocoMetric does (segm results without boxes, so that areas are
// mask areas).
#pragma once

#include <functional>
#include <map>

#include "apps/experiment.h"
#include "data/coco_eval.h"
#include "dist/communicator.h"

namespace gndet::app {

struct EvalReport {
  std::vector<data::Detection> detections;
  std::map<std::string, data::EvalResult> results;  // "bbox", "segm"
  double seconds_per_image = 0;
};

// progress(done, total) after every batch.
// With a communicator of several ranks, each rank predicts its shard (whole batches of the
// one-process order, so every image is padded as in one process), rank 0 gathers the detections,
// puts them back in the one-process order and scores them: its AP equals a one-process
// evaluation exactly. Other ranks get their own detections and no results.
EvalReport evaluate_detector(TwoStageDetector& model, const data::CocoDataset& dataset,
                             const data::LoaderOptions& options, Device device,
                             const std::function<void(int64_t, int64_t)>& progress = {},
                             dist::Communicator* comm = nullptr);

// "bbox_mAP_copypaste: 0.374 0.581 0.404 0.218 0.410 0.481" (AP, AP50, AP75, APs, APm, APl).
std::string copypaste_line(const std::string& metric, const data::EvalResult& r);

// Writes PREFIX.bbox.json and, with masks, PREFIX.segm.json (atomically).
std::vector<std::string> write_results(const std::string& prefix, const std::vector<data::Detection>& detections,
                                       bool with_masks);

}  // namespace gndet::app
