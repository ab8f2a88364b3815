#include "detection/bbox_head.h"

#include "tensor/grad_mode.h"
#include "nn/init.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/loss.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "tensor/factory.h"

namespace gndet {

BBoxHead::BBoxHead(const ConfigNode& cfg, Generator& gen) : coder_(DeltaXYWHCoder::from_config(cfg["bbox_coder"])) {
  const std::string type = cfg.type({"Shared2FCBBoxHead", "Shared4Conv1FCBBoxHead", "ConvFCBBoxHead"});
  cfg.check_keys({"type", "num_shared_convs", "num_shared_fcs", "num_classes", "reg_class_agnostic", "loss_cls", "loss_bbox", "in_channels", "roi_feat_size", "conv_out_channels", "fc_out_channels", "norm_cfg", "conv_cfg", "bbox_coder"});
  int64_t num_convs = 0, num_fcs = 2;
  if (type == "Shared4Conv1FCBBoxHead") {
    num_convs = 4;
    num_fcs = 1;
  } else if (type == "ConvFCBBoxHead") {
    num_convs = cfg.get_int("num_shared_convs", 0);
    num_fcs = cfg.get_int("num_shared_fcs", 0);
  }
  num_classes_ = cfg["num_classes"].as_int();
  class_agnostic_ = cfg.get_bool("reg_class_agnostic", false);
  const ConfigNode loss_cls = cfg["loss_cls"];
  check_loss(loss_cls, "CrossEntropyLoss");
  GNDET_CHECK(!loss_cls.get_bool("use_sigmoid", false), "config ", loss_cls.path(),
              ": the box head classifies with softmax (use_sigmoid=false)");
  check_loss(cfg["loss_bbox"], "L1Loss");
  const int64_t in = cfg.get_int("in_channels", 256), size = cfg.get_int("roi_feat_size", 7);
  const int64_t conv_out = cfg.get_int("conv_out_channels", 256), fc_out = cfg.get_int("fc_out_channels", 1024);
  const NormSpec norm = norm_from_config(cfg);
  const bool ws = ws_from_config(cfg);

  shared_convs_ = register_module("shared_convs", std::make_shared<nn::Sequential>());
  int64_t channels = in;
  for (int64_t i = 0; i < num_convs; ++i) {
    shared_convs_->push_back(std::make_shared<nn::ConvModule>(conv_module_options(channels, conv_out, 3, norm, ws, true), gen));
    channels = conv_out;
  }
  shared_fcs_ = register_module("shared_fcs", std::make_shared<nn::Sequential>());
  int64_t features = channels * size * size;
  for (int64_t i = 0; i < num_fcs; ++i) {
    auto fc = std::make_shared<nn::Linear>(features, fc_out, true, gen);
    nn::init::xavier_uniform(fc->weight(), gen);
    nn::init::constant(fc->bias(), 0.0);
    shared_fcs_->push_back(fc);
    features = fc_out;
  }
  fc_cls_ = register_module("fc_cls", std::make_shared<nn::Linear>(features, num_classes_ + 1, true, gen));
  fc_reg_ = register_module("fc_reg",
                            std::make_shared<nn::Linear>(features, class_agnostic_ ? 4 : 4 * num_classes_, true, gen));
  nn::init::normal(fc_cls_->weight(), gen, 0.0, 0.01);
  nn::init::constant(fc_cls_->bias(), 0.0);
  nn::init::normal(fc_reg_->weight(), gen, 0.0, 0.001);
  nn::init::constant(fc_reg_->bias(), 0.0);
}

BBoxHeadOutput BBoxHead::forward(const Tensor& roi_feats) {
  nn::ModuleScope scope(this);
  Tensor x = roi_feats;
  for (size_t i = 0; i < shared_convs_->size(); ++i) x = (*shared_convs_)[i]->forward(x);
  x = x.flatten(1);
  for (size_t i = 0; i < shared_fcs_->size(); ++i) x = relu((*shared_fcs_)[i]->forward(x));
  return {fc_cls_->forward(x), fc_reg_->forward(x)};
}

LossDict BBoxHead::loss(const BBoxHeadOutput& out, const std::vector<SamplingResult>& samples) const {
  nn::ModuleScope scope(this);
  const int64_t R = out.cls_score.size(0);
  Tensor labels, pos_rows, pos_labels, targets;
  {
    autograd::NoGradGuard no_grad;
    const TensorOptions idx(kInt64, out.cls_score.device());
    Tensors label_parts, pos_parts, pos_label_parts, target_parts;
    int64_t offset = 0;
    for (const SamplingResult& s : samples) {
      label_parts.push_back(s.pos_gt_labels);
      label_parts.push_back(full({s.num_neg()}, static_cast<double>(num_classes_), idx));
      pos_parts.push_back(arange(static_cast<double>(offset), static_cast<double>(offset + s.num_pos()), 1.0, idx));
      pos_label_parts.push_back(s.pos_gt_labels);
      target_parts.push_back(coder_.encode(s.pos_boxes, s.pos_gt_boxes));
      offset += s.num_pos() + s.num_neg();
    }
    GNDET_CHECK(offset == R, "BBoxHead::loss: ", R, " RoI predictions for ", offset, " sampled RoIs");
    labels = cat(label_parts, 0);
    pos_rows = cat(pos_parts, 0);
    pos_labels = cat(pos_label_parts, 0);
    targets = cat(target_parts, 0).to(out.bbox_pred.dtype());
  }
  const Tensor loss_cls = cross_entropy(out.cls_score, labels);
  Tensor loss_bbox;
  const int64_t P = pos_rows.numel();
  if (P == 0) {
    loss_bbox = sum(out.bbox_pred) * 0.0;  // keeps the graph connected with a zero gradient
  } else {
    Tensor pred = index_select(out.bbox_pred, 0, pos_rows);  // (P, 4C) or (P, 4)
    if (!class_agnostic_) {
      const Tensor pick = pos_labels.reshape({P, 1, 1}).expand({P, 1, 4}).contiguous();
      pred = gather(pred.reshape({P, num_classes_, 4}), 1, pick).reshape({P, 4});
    }
    loss_bbox = l1_loss(pred, targets, Reduction::Sum) / static_cast<double>(std::max<int64_t>(R, 1));
  }
  Tensor accuracy;
  {
    autograd::NoGradGuard no_grad;
    const Tensor hit = eq(argmax(out.cls_score, 1), labels).to(kFloat32);
    accuracy = mean(hit) * 100.0;
  }
  return {{"loss_cls", loss_cls}, {"loss_bbox", loss_bbox}, {"acc", accuracy}};
}

ClassDetections BBoxHead::predict(const BBoxHeadOutput& out, const Tensor& rois, const ImageInfo& info,
                                  double score_thr, double nms_iou, int64_t max_per_img) const {
  autograd::NoGradGuard no_grad;
  const Tensor scores = softmax(out.cls_score, 1);
  Tensor boxes = coder_.decode(rois, out.bbox_pred, {info.height, info.width});
  // Back to the original image: divide x by the width scale and y by the height scale.
  const Tensor scale = from_data<double>({info.scale_w, info.scale_h, info.scale_w, info.scale_h}).to(boxes.options());
  // Sizes spelled out: with zero proposals (K = 0) a -1 could not be inferred.
  const int64_t K = boxes.size(0), C = boxes.size(1) / 4;
  boxes = (boxes.reshape({K, C, 4}) / scale).reshape({K, C * 4});
  return multiclass_nms(boxes, scores, score_thr, nms_iou, max_per_img);
}

}  // namespace gndet
