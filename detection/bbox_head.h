// ConvFCBBoxHead (mmdetection): the second stage's classifier and box regressor.
//
//   shared_convs.i: 3x3 ConvModule (norm, ReLU)         Shared4Conv1FC: 4 of them (GN)
//   shared_fcs.i:   Linear + ReLU                       Shared4Conv1FC: 1, Shared2FC: 2
//   fc_cls: Linear -> C + 1 (softmax, background last), init N(0, 0.01)
//   fc_reg: Linear -> 4C class-specific deltas (or 4 when class agnostic), init N(0, 0.001)
// Shared fcs start from xavier_uniform, convs from kaiming_normal(fan_out) (ConvModule).
//
// Losses over the sampled RoIs R of the batch:
//   loss_cls  = mean softmax cross-entropy over R
//   loss_bbox = sum of L1 over the positive RoIs' deltas for their gt class / |R|
#pragma once

#include "detection/box_coder.h"
#include "detection/layer_config.h"
#include "detection/postprocess.h"
#include "detection/sampler.h"
#include "detection/structures.h"
#include "nn/layers.h"

namespace gndet {

struct BBoxHeadOutput {
  Tensor cls_score;  // (K, C + 1)
  Tensor bbox_pred;  // (K, 4C) or (K, 4)
};

class BBoxHead : public nn::Module {
 public:
  // {"type": "Shared2FCBBoxHead" | "Shared4Conv1FCBBoxHead" | "ConvFCBBoxHead", "in_channels",
  //  "conv_out_channels", "fc_out_channels", "roi_feat_size", "num_classes", "bbox_coder",
  //  "reg_class_agnostic", "norm_cfg", "conv_cfg", "loss_cls", "loss_bbox"}
  BBoxHead(const ConfigNode& cfg, Generator& gen);

  BBoxHeadOutput forward(const Tensor& roi_feats);  // (K, in, S, S)
  // Sampling results per image, in the order their RoIs (pos then neg) were stacked.
  LossDict loss(const BBoxHeadOutput& out, const std::vector<SamplingResult>& samples) const;
  // One image: rois (K, 4) in network-input coordinates -> boxes in original-image coordinates.
  ClassDetections predict(const BBoxHeadOutput& out, const Tensor& rois, const ImageInfo& info, double score_thr,
                          double nms_iou, int64_t max_per_img) const;

  int64_t num_classes() const { return num_classes_; }

 private:
  int64_t num_classes_;
  bool class_agnostic_;
  DeltaXYWHCoder coder_;
  std::shared_ptr<nn::Sequential> shared_convs_, shared_fcs_;
  std::shared_ptr<nn::Linear> fc_cls_, fc_reg_;
};

}  // namespace gndet
