// Faster R-CNN and Mask R-CNN (mmdetection's TwoStageDetector), built from a config's "model":
//
//   loss:    features = neck(backbone(images)); rpn losses and proposals; roi-head losses
//   predict: features = neck(backbone(images)); proposals; boxes, classes and masks
//
// Children (and so state_dict prefixes): "backbone", "neck", "rpn_head", "roi_head", exactly
// mmdetection's, so its checkpoints load by name. Images arrive normalised and padded, (N, 3, H, W).
#pragma once

#include <optional>

#include "detection/fpn.h"
#include "detection/resnet.h"
#include "detection/roi_head.h"
#include "detection/rpn_head.h"

namespace gndet {

// model.train_cfg and model.test_cfg, parsed once when the detector is built.
struct TrainConfig {
  RpnTrainConfig rpn;
  ProposalConfig rpn_proposal;
  RcnnTrainConfig rcnn;
  // {"rpn", "rpn_proposal", "rcnn"}
  static TrainConfig from_config(const ConfigNode& cfg);
};
struct TestConfig {
  ProposalConfig rpn;
  RcnnTestConfig rcnn;
  // {"rpn", "rcnn"}
  static TestConfig from_config(const ConfigNode& cfg);
};

// What the first stage of training hands to the second: the features, the RPN's losses and the
// proposals the RoI head trains on.
struct RpnStage {
  std::vector<Tensor> feats;
  LossDict losses;  // loss_rpn_cls, loss_rpn_bbox
  std::vector<Proposals> proposals;
};

class TwoStageDetector : public nn::Module {
 public:
  // model_cfg: the config's "model" dict (type MaskRCNN or FasterRCNN). Its train_cfg and test_cfg
  // are read here, so a bad value there fails now rather than at the first training step or evaluation.
  TwoStageDetector(const Json& model_cfg, Generator& gen);

  // loss = rpn_stage, then roi_stage on its features and proposals. The two stages are public so
  // that a test can run the second on proposals of its own (CUDA parity with the CPU's proposals).
  LossDict loss(const Tensor& images, const std::vector<ImageTargets>& targets, const std::vector<ImageInfo>& infos,
                Generator& gen);
  RpnStage rpn_stage(const Tensor& images, const std::vector<ImageTargets>& targets,
                     const std::vector<ImageInfo>& infos, Generator& gen);
  LossDict roi_stage(const std::vector<Tensor>& feats, const std::vector<Proposals>& proposals,
                     const std::vector<ImageTargets>& targets, const std::vector<ImageInfo>& infos, Generator& gen);
  std::vector<Detections> predict(const Tensor& images, const std::vector<ImageInfo>& infos);

  bool with_mask() const { return roi_head_->with_mask(); }
  int64_t num_classes() const { return roi_head_->num_classes(); }
  const Json& config() const { return cfg_; }
  // Throw naming the config when the model has no train_cfg / test_cfg.
  const TrainConfig& train_config() const;
  const TestConfig& test_config() const;

 private:
  std::vector<Tensor> features(const Tensor& images);

  Json cfg_;
  std::optional<TrainConfig> train_cfg_;  // absent: an inference-only model
  std::optional<TestConfig> test_cfg_;
  std::shared_ptr<ResNet> backbone_;
  std::shared_ptr<FPN> neck_;
  std::shared_ptr<RPNHead> rpn_head_;
  std::shared_ptr<StandardRoIHead> roi_head_;
};

// The sum of the entries whose name contains "loss" (mmdetection's parse_losses; "acc" is not one).
Tensor total_loss(const LossDict& losses);

}  // namespace gndet
