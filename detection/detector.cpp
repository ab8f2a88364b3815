#include "detection/detector.h"

#include "ops/elementwise.h"

namespace gndet {

TwoStageDetector::TwoStageDetector(const Json& model_cfg, Generator& gen) : cfg_(model_cfg) {
  const ConfigNode cfg(cfg_, "model");
  const std::string type = cfg.type({"MaskRCNN", "FasterRCNN"});
  backbone_ = register_module("backbone", std::make_shared<ResNet>(ResNetOptions::from_config(cfg["backbone"]), gen));
  FPNOptions neck = FPNOptions::from_config(cfg["neck"]);
  GNDET_CHECK(neck.in_channels == backbone_->out_channels(), "config model.neck.in_channels does not match the "
              "backbone's output channels");
  neck_ = register_module("neck", std::make_shared<FPN>(neck, gen));
  rpn_head_ = register_module("rpn_head", std::make_shared<RPNHead>(cfg["rpn_head"], gen));
  roi_head_ = register_module("roi_head", std::make_shared<StandardRoIHead>(cfg["roi_head"], gen));
  GNDET_CHECK(roi_head_->with_mask() == (type == "MaskRCNN"), "config model.type ", type,
              roi_head_->with_mask() ? " has a mask head" : " needs roi_head.mask_head");
}

std::vector<Tensor> TwoStageDetector::features(const Tensor& images) {
  return neck_->forward(backbone_->forward(images));
}

LossDict TwoStageDetector::loss(const Tensor& images, const std::vector<ImageTargets>& targets,
                                const std::vector<ImageInfo>& infos, Generator& gen) {
  const ConfigNode train_cfg(cfg_["train_cfg"], "model.train_cfg");
  const std::vector<Tensor> feats = features(images);
  const RpnOutputs rpn = rpn_head_->forward(feats);
  LossDict losses = rpn_head_->loss(rpn, targets, infos, train_cfg["rpn"], gen);
  const std::vector<Proposals> proposals =
      rpn_head_->proposals(rpn, infos, ProposalConfig::from_config(train_cfg["rpn_proposal"]));
  for (auto& l : roi_head_->loss(feats, proposals, targets, infos, train_cfg["rcnn"], gen)) losses.push_back(l);
  return losses;
}

std::vector<Detections> TwoStageDetector::predict(const Tensor& images, const std::vector<ImageInfo>& infos) {
  const ConfigNode test_cfg(cfg_["test_cfg"], "model.test_cfg");
  const std::vector<Tensor> feats = features(images);
  const std::vector<Proposals> proposals =
      rpn_head_->proposals(rpn_head_->forward(feats), infos, ProposalConfig::from_config(test_cfg["rpn"]));
  return roi_head_->predict(feats, proposals, infos, test_cfg["rcnn"]);
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
