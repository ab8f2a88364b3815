#include "apps/evaluation.h"

#include <chrono>

#include "tensor/grad_mode.h"

namespace gndet::app {

EvalReport evaluate_detector(TwoStageDetector& model, const data::CocoDataset& dataset,
                             const data::LoaderOptions& options, Device device,
                             const std::function<void(int64_t, int64_t)>& progress, dist::Communicator* comm) {
  autograd::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  data::LoaderOptions o = options;
  o.shuffle = false;
  const int world = comm ? comm->world_size() : 1;
  o.rank = comm ? comm->rank() : 0;
  o.world_size = world;
  o.shard_whole_batches = true;
  std::vector<std::vector<data::Detection>> per_batch;  // this rank's, in its order
  data::DataLoader loader(std::shared_ptr<const data::Dataset>(&dataset, [](const data::Dataset*) {}), o);
  loader.start_epoch(0);
  EvalReport report;
  const int64_t total = loader.batches_per_epoch();
  int64_t done = 0, images = 0;
  const auto start = std::chrono::steady_clock::now();
  while (auto batch = loader.next()) {
    const ModelInputs in = to_model_inputs(*batch, device, false);
    const std::vector<Detections> dets = model.predict(in.images, in.infos);
    per_batch.push_back(to_coco_detections(dets, in.infos, dataset.coco()));
    if (world == 1) {
      for (auto& d : per_batch.back()) report.detections.push_back(std::move(d));
      per_batch.clear();
    }
    images += static_cast<int64_t>(in.infos.size());
    if (progress) progress(++done, total);
  }
  report.seconds_per_image =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / std::max<int64_t>(images, 1);
  model.train(was_training);
  if (world > 1) {
    // Rank 0 takes every rank's batches and interleaves them back: one-process batch b was
    // rank b % world's (b / world)-th batch.
    Json mine = Json::array();
    for (const auto& batch : per_batch) mine.push_back(data::detections_to_json(batch));
    const std::vector<std::string> all = comm->gather(mine.dump(), 0);
    if (!comm->is_main()) {
      for (auto& batch : per_batch) {
        for (auto& d : batch) report.detections.push_back(std::move(d));
      }
      return report;
    }
    std::vector<Json> ranks;
    for (const std::string& text : all) ranks.push_back(Json::parse(text));
    for (size_t b = 0;; ++b) {
      const Json& r = ranks[b % static_cast<size_t>(world)];
      const size_t k = b / static_cast<size_t>(world);
      if (k >= r.size()) break;
      for (auto& d : data::parse_detections(r[k], "detections gathered from rank " + std::to_string(b % world))) {
        report.detections.push_back(std::move(d));
      }
    }
  }

  data::EvalOptions eo;
  eo.iou_type = data::IouType::Bbox;
  report.results["bbox"] = data::evaluate(dataset.coco(), report.detections, eo);
  if (model.with_mask()) {
    eo.iou_type = data::IouType::Segm;
    eo.mmdet_segm_area = true;
    report.results["segm"] = data::evaluate(dataset.coco(), report.detections, eo);
  }
  return report;
}

std::string copypaste_line(const std::string& metric, const data::EvalResult& r) {
  char buf[160];
  std::snprintf(buf, sizeof(buf), "%s_mAP_copypaste: %.3f %.3f %.3f %.3f %.3f %.3f", metric.c_str(), r.stats[0],
                r.stats[1], r.stats[2], r.stats[3], r.stats[4], r.stats[5]);
  return buf;
}

std::vector<std::string> write_results(const std::string& prefix, const std::vector<data::Detection>& detections,
                                       bool with_masks) {
  std::vector<std::string> written;
  std::vector<data::Detection> boxes = detections;
  for (auto& d : boxes) d.segmentation.reset();
  data::write_detections(prefix + ".bbox.json", boxes);
  written.push_back(prefix + ".bbox.json");
  if (with_masks) {
    std::vector<data::Detection> masks = detections;
    for (auto& d : masks) d.bbox.reset();  // mmdetection's segm results carry no box
    data::write_detections(prefix + ".segm.json", masks);
    written.push_back(prefix + ".segm.json");
  }
  return written;
}

}  // namespace gndet::app
