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

class StandardRoIHead : public nn::Module {
 public:
  // The roi_head dict; without mask_head / mask_roi_extractor it is a Faster R-CNN head.
  StandardRoIHead(const ConfigNode& cfg, Generator& gen);

  // {"loss_cls", "loss_bbox", "acc"[, "loss_mask"]}; rcnn_cfg is model.train_cfg.rcnn.
  LossDict loss(const std::vector<Tensor>& feats, const std::vector<Proposals>& proposals,
                const std::vector<ImageTargets>& targets, const std::vector<ImageInfo>& infos,
                const ConfigNode& rcnn_cfg, Generator& gen);
  // rcnn_cfg is model.test_cfg.rcnn.
  std::vector<Detections> predict(const std::vector<Tensor>& feats, const std::vector<Proposals>& proposals,
                                  const std::vector<ImageInfo>& infos, const ConfigNode& rcnn_cfg);

  bool with_mask() const { return mask_head_ != nullptr; }
  int64_t num_classes() const { return bbox_head_->num_classes(); }

 private:
  RoIExtractor bbox_roi_extractor_, mask_roi_extractor_;
  std::shared_ptr<BBoxHead> bbox_head_;
  std::shared_ptr<MaskHead> mask_head_;
};

}  // namespace gndet
