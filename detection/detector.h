// Faster R-CNN and Mask R-CNN (mmdetection's TwoStageDetector), built from a config's "model":
//
//   loss:    features = neck(backbone(images)); rpn losses and proposals; roi-head losses
//   predict: features = neck(backbone(images)); proposals; boxes, classes and masks
//
// Children (and so state_dict prefixes): "backbone", "neck", "rpn_head", "roi_head", exactly
// mmdetection's, so its checkpoints load by name. Images arrive normalised and padded, (N, 3, H, W).
#pragma once

#include "detection/fpn.h"
#include "detection/resnet.h"
#include "detection/roi_head.h"
#include "detection/rpn_head.h"

namespace gndet {

class TwoStageDetector : public nn::Module {
 public:
  // model_cfg: the config's "model" dict (type MaskRCNN or FasterRCNN).
  TwoStageDetector(const Json& model_cfg, Generator& gen);

  LossDict loss(const Tensor& images, const std::vector<ImageTargets>& targets, const std::vector<ImageInfo>& infos,
                Generator& gen);
  std::vector<Detections> predict(const Tensor& images, const std::vector<ImageInfo>& infos);

  bool with_mask() const { return roi_head_->with_mask(); }
  int64_t num_classes() const { return roi_head_->num_classes(); }
  const Json& config() const { return cfg_; }

 private:
  std::vector<Tensor> features(const Tensor& images);

  Json cfg_;
  std::shared_ptr<ResNet> backbone_;
  std::shared_ptr<FPN> neck_;
  std::shared_ptr<RPNHead> rpn_head_;
  std::shared_ptr<StandardRoIHead> roi_head_;
};

// The sum of the entries whose name contains "loss" (mmdetection's parse_losses; "acc" is not one).
Tensor total_loss(const LossDict& losses);

}  // namespace gndet
