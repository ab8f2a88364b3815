#include "detection/detector.h"

#include "ops/elementwise.h"

namespace gndet {

TrainConfig TrainConfig::from_config(const ConfigNode& cfg) {
  cfg.check_keys({"rpn", "rpn_proposal", "rcnn"});
  return {RpnTrainConfig::from_config(cfg["rpn"]), ProposalConfig::from_config(cfg["rpn_proposal"]),
          RcnnTrainConfig::from_config(cfg["rcnn"])};
}

TestConfig TestConfig::from_config(const ConfigNode& cfg) {
  cfg.check_keys({"rpn", "rcnn"});
  return {ProposalConfig::from_config(cfg["rpn"]), RcnnTestConfig::from_config(cfg["rcnn"])};
}

TwoStageDetector::TwoStageDetector(const Json& model_cfg, Generator& gen) : cfg_(model_cfg) {
  const ConfigNode cfg(cfg_, "model");
  const std::string type = cfg.type({"MaskRCNN", "FasterRCNN"});
  // data_preprocessor: normalisation and padding, done by the data pipeline (apps/experiment.cpp).
  cfg.check_keys({"type", "backbone", "neck", "rpn_head", "roi_head", "train_cfg", "test_cfg", "data_preprocessor"});
  // The cheap sections first: their errors come before any weight is allocated.
  if (cfg.has("train_cfg") && !cfg["train_cfg"].is_null()) train_cfg_ = TrainConfig::from_config(cfg["train_cfg"]);
  if (cfg.has("test_cfg") && !cfg["test_cfg"].is_null()) test_cfg_ = TestConfig::from_config(cfg["test_cfg"]);
  backbone_ = register_module("backbone", std::make_shared<ResNet>(ResNetOptions::from_config(cfg["backbone"]), gen));
  FPNOptions neck = FPNOptions::from_config(cfg["neck"]);
  GNDET_CHECK(neck.in_channels == backbone_->out_channels(), "config model.neck.in_channels does not match the "
              "backbone's output channels");
  neck_ = register_module("neck", std::make_shared<FPN>(neck, gen));
  rpn_head_ = register_module("rpn_head", std::make_shared<RPNHead>(cfg["rpn_head"], gen));
  roi_head_ = register_module("roi_head", std::make_shared<StandardRoIHead>(cfg["roi_head"], gen));
  GNDET_CHECK(roi_head_->with_mask() == (type == "MaskRCNN"), "config model.type ", type,
              roi_head_->with_mask() ? " has a mask head" : " needs roi_head.mask_head");
  if (train_cfg_) roi_head_->check_train_config(train_cfg_->rcnn);
}

const TrainConfig& TwoStageDetector::train_config() const {
  GNDET_CHECK(train_cfg_.has_value(), "config model has no train_cfg: this model can only predict");
  return *train_cfg_;
}

const TestConfig& TwoStageDetector::test_config() const {
  GNDET_CHECK(test_cfg_.has_value(), "config model has no test_cfg: this model cannot predict");
  return *test_cfg_;
}

std::vector<Tensor> TwoStageDetector::features(const Tensor& images) {
  return neck_->forward(backbone_->forward(images));
}

LossDict TwoStageDetector::loss(const Tensor& images, const std::vector<ImageTargets>& targets,
                                const std::vector<ImageInfo>& infos, Generator& gen) {
  RpnStage first = rpn_stage(images, targets, infos, gen);
  LossDict losses = std::move(first.losses);
  for (auto& l : roi_stage(first.feats, first.proposals, targets, infos, gen)) losses.push_back(std::move(l));
  return losses;
}

RpnStage TwoStageDetector::rpn_stage(const Tensor& images, const std::vector<ImageTargets>& targets,
                                     const std::vector<ImageInfo>& infos, Generator& gen) {
  const TrainConfig& train_cfg = train_config();
  RpnStage s;
  s.feats = features(images);
  const RpnOutputs rpn = rpn_head_->forward(s.feats);
  s.losses = rpn_head_->loss(rpn, targets, infos, train_cfg.rpn, gen);
  s.proposals = rpn_head_->proposals(rpn, infos, train_cfg.rpn_proposal);
  return s;
}

LossDict TwoStageDetector::roi_stage(const std::vector<Tensor>& feats, const std::vector<Proposals>& proposals,
                                     const std::vector<ImageTargets>& targets, const std::vector<ImageInfo>& infos,
                                     Generator& gen) {
  return roi_head_->loss(feats, proposals, targets, infos, train_config().rcnn, gen);
}

std::vector<Detections> TwoStageDetector::predict(const Tensor& images, const std::vector<ImageInfo>& infos) {
  const TestConfig& test_cfg = test_config();
  const std::vector<Tensor> feats = features(images);
  const std::vector<Proposals> proposals = rpn_head_->proposals(rpn_head_->forward(feats), infos, test_cfg.rpn);
  return roi_head_->predict(feats, proposals, infos, test_cfg.rcnn);
}

Tensor total_loss(const LossDict& losses) {
  Tensor total;
  for (const auto& [name, value] : losses) {
    if (name.find("loss") == std::string::npos) continue;
    total = total.defined() ? total + value : value;
  }
  GNDET_CHECK(total.defined(), "total_loss: no loss terms");
  return total;
}

}  // namespace gndet
