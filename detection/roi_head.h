// StandardRoIHead (mmdetection): the second stage. Training samples RoIs among the proposals
// (plus the gt boxes), pools their features from the FPN and applies the box head; the positive
// RoIs also feed the mask head. Inference scores the proposals, keeps the best boxes per class,
// and predicts a mask for each kept box.
#pragma once

#include "detection/bbox_head.h"
#include "detection/mask_head.h"
#include "detection/roi_extractor.h"
#include "detection/rpn_head.h"

namespace gndet {

// model.train_cfg.rcnn: how proposals are assigned and sampled for the RoI head's losses.
struct RcnnTrainConfig {
  MaxIoUAssigner assigner;
  RandomSampler sampler;
  int64_t mask_size = 28;  // the mask targets' size; must be the mask head's output size

  // {"assigner", "sampler", "mask_size", "pos_weight" (-1), "debug" (false)}
  static RcnnTrainConfig from_config(const ConfigNode& cfg);
};

// model.test_cfg.rcnn: which boxes and masks inference keeps.
struct RcnnTestConfig {
  double score_thr = 0.05;
  double nms_iou = 0.5;
  int64_t max_per_img = 100;
  double mask_thr_binary = 0.5;

  // {"score_thr", "nms": {"type": "nms", "iou_threshold"}, "max_per_img", "mask_thr_binary"}
  static RcnnTestConfig from_config(const ConfigNode& cfg);
};

class StandardRoIHead : public nn::Module {
 public:
  // The roi_head dict; without mask_head / mask_roi_extractor it is a Faster R-CNN head.
  StandardRoIHead(const ConfigNode& cfg, Generator& gen);

  // {"loss_cls", "loss_bbox", "acc"[, "loss_mask"]}.
  LossDict loss(const std::vector<Tensor>& feats, const std::vector<Proposals>& proposals,
                const std::vector<ImageTargets>& targets, const std::vector<ImageInfo>& infos,
                const RcnnTrainConfig& rcnn_cfg, Generator& gen);
  std::vector<Detections> predict(const std::vector<Tensor>& feats, const std::vector<Proposals>& proposals,
                                  const std::vector<ImageInfo>& infos, const RcnnTestConfig& rcnn_cfg);
  // Throws naming model.train_cfg.rcnn.mask_size when it differs from the mask head's output size.
  void check_train_config(const RcnnTrainConfig& rcnn_cfg) const;

  bool with_mask() const { return mask_head_ != nullptr; }
  int64_t num_classes() const { return bbox_head_->num_classes(); }

 private:
  RoIExtractor bbox_roi_extractor_, mask_roi_extractor_;
  std::shared_ptr<BBoxHead> bbox_head_;
  std::shared_ptr<MaskHead> mask_head_;
};

}  // namespace gndet
