#include "detection/roi_head.h"

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/join.h"
#include "tensor/factory.h"

namespace gndet {

RcnnTrainConfig RcnnTrainConfig::from_config(const ConfigNode& cfg) {
  cfg.check_keys({"assigner", "sampler", "mask_size", "pos_weight", "debug"});
  check_unsupported_train_keys(cfg);
  RcnnTrainConfig c{MaxIoUAssigner::from_config(cfg["assigner"]), RandomSampler::from_config(cfg["sampler"])};
  c.mask_size = cfg.get_int("mask_size", 28, 1, 4096);
  return c;
}

RcnnTestConfig RcnnTestConfig::from_config(const ConfigNode& cfg) {
  cfg.check_keys({"score_thr", "nms", "max_per_img", "mask_thr_binary"});
  RcnnTestConfig c;
  c.score_thr = cfg["score_thr"].as_double();
  c.nms_iou = nms_iou_from_config(cfg["nms"]);
  c.max_per_img = cfg["max_per_img"].as_int(0, INT64_MAX);
  c.mask_thr_binary = cfg.get_double("mask_thr_binary", 0.5);
  return c;
}

void StandardRoIHead::check_train_config(const RcnnTrainConfig& rcnn_cfg) const {
  if (!mask_head_) return;
  const int64_t out = 2 * mask_roi_extractor_.roi.out_h;  // the deconv doubles the RoI features
  GNDET_CHECK(rcnn_cfg.mask_size == out, "config model.train_cfg.rcnn.mask_size: ", rcnn_cfg.mask_size,
              " differs from the mask head's output size ", out, " (2 x mask_roi_extractor output_size)");
}

StandardRoIHead::StandardRoIHead(const ConfigNode& cfg, Generator& gen)
    : bbox_roi_extractor_(RoIExtractor::from_config(cfg["bbox_roi_extractor"])) {
  cfg.type({"StandardRoIHead"});
  cfg.check_keys({"type", "bbox_roi_extractor", "bbox_head", "mask_roi_extractor", "mask_head"});
  bbox_head_ = register_module("bbox_head", std::make_shared<BBoxHead>(cfg["bbox_head"], gen));
  if (cfg.has("mask_head") && !cfg["mask_head"].is_null()) {
    mask_roi_extractor_ = RoIExtractor::from_config(cfg["mask_roi_extractor"]);
    mask_head_ = register_module("mask_head", std::make_shared<MaskHead>(cfg["mask_head"], gen));
  }
}

LossDict StandardRoIHead::loss(const std::vector<Tensor>& feats, const std::vector<Proposals>& proposals,
                               const std::vector<ImageTargets>& targets, const std::vector<ImageInfo>& infos,
                               const RcnnTrainConfig& rcnn_cfg, Generator& gen) {
  nn::ModuleScope scope(this);  // gndet graph: RoIAlign and the losses are labelled roi_head
  const MaxIoUAssigner& assigner = rcnn_cfg.assigner;
  const RandomSampler& sampler = rcnn_cfg.sampler;
  std::vector<SamplingResult> samples;
  std::vector<Tensor> sampled_boxes, positive_boxes;
  {
    autograd::NoGradGuard no_grad;
    for (size_t i = 0; i < proposals.size(); ++i) {
      samples.push_back(sampler.sample(assigner, proposals[i].boxes, targets[i].boxes.to(proposals[i].boxes.dtype()),
                                       targets[i].labels, gen));
      sampled_boxes.push_back(cat({samples.back().pos_boxes, samples.back().neg_boxes}, 0));
      positive_boxes.push_back(samples.back().pos_boxes);
    }
  }
  const BBoxHeadOutput out = bbox_head_->forward(bbox_roi_extractor_(feats, boxes_to_rois(sampled_boxes)));
  LossDict losses = bbox_head_->loss(out, samples);
  if (mask_head_) {
    std::vector<Tensor> gt_masks;
    for (const ImageTargets& t : targets) gt_masks.push_back(t.masks);
    const Tensor logits = mask_head_->forward(mask_roi_extractor_(feats, boxes_to_rois(positive_boxes)));
    for (auto& l : mask_head_->loss(logits, samples, gt_masks)) losses.push_back(l);
  }
  (void)infos;  // boxes and masks are already in network-input coordinates
  return losses;
}

std::vector<Detections> StandardRoIHead::predict(const std::vector<Tensor>& feats,
                                                 const std::vector<Proposals>& proposals,
                                                 const std::vector<ImageInfo>& infos, const RcnnTestConfig& rcnn_cfg) {
  autograd::NoGradGuard no_grad;
  const double score_thr = rcnn_cfg.score_thr, nms_iou = rcnn_cfg.nms_iou;
  const int64_t max_per_img = rcnn_cfg.max_per_img;

  std::vector<Tensor> boxes;
  for (const Proposals& p : proposals) boxes.push_back(p.boxes);
  const BBoxHeadOutput out = bbox_head_->forward(bbox_roi_extractor_(feats, boxes_to_rois(boxes)));
  std::vector<Detections> result;
  int64_t at = 0;
  for (size_t i = 0; i < proposals.size(); ++i) {
    const int64_t K = proposals[i].boxes.size(0);
    const BBoxHeadOutput mine{out.cls_score.narrow(0, at, K), out.bbox_pred.narrow(0, at, K)};
    at += K;
    const ClassDetections d = bbox_head_->predict(mine, proposals[i].boxes, infos[i], score_thr, nms_iou, max_per_img);
    result.push_back({d.boxes, d.scores, d.labels, Tensor()});
  }
  if (!mask_head_) return result;

  // Masks: RoIs are the kept boxes brought back to network-input scale.
  std::vector<Tensor> input_boxes;
  for (size_t i = 0; i < result.size(); ++i) {
    const ImageInfo& info = infos[i];
    const Tensor scale = from_data<double>({info.scale_w, info.scale_h, info.scale_w, info.scale_h})
                             .to(result[i].boxes.options());
    input_boxes.push_back(result[i].boxes * scale);
  }
  const Tensor logits = mask_head_->forward(mask_roi_extractor_(feats, boxes_to_rois(input_boxes)));
  const double thr = rcnn_cfg.mask_thr_binary;
  at = 0;
  for (size_t i = 0; i < result.size(); ++i) {
    const int64_t D = result[i].boxes.size(0);
    result[i].masks = mask_head_->predict(logits.narrow(0, at, D), result[i].labels, result[i].boxes, infos[i], thr);
    at += D;
  }
  return result;
}

}  // namespace gndet
