// RPNHead (mmdetection): objectness and box deltas for every anchor of every FPN level.
//
//   rpn_conv: 3x3 conv + ReLU (shared by all levels), rpn_cls: 1x1 -> A sigmoid logits,
//   rpn_reg: 1x1 -> 4A deltas; init N(0, 0.01), biases 0. No norm (ZOO.md: GN everywhere but here).
//
// Training (loss): each image's anchors inside its own padded area are assigned (MaxIoU 0.7/0.3,
// low-quality matches), 256 are sampled (half positive at most), and
//   loss_rpn_cls  = sum of BCE over sampled anchors / #sampled in the batch
//   loss_rpn_bbox = sum of L1 over positive anchors' 4 deltas / #sampled in the batch
// Proposals (predict): per level the nms_pre best anchors by score are decoded and clipped to the
// image, empty boxes dropped, NMS runs per level (batched), and the best max_per_img survive.
#pragma once

#include <vector>

#include "detection/anchors.h"
#include "detection/assigner.h"
#include "detection/box_coder.h"
#include "detection/sampler.h"
#include "detection/structures.h"
#include "nn/layers.h"

namespace gndet {

struct ProposalConfig {
  int64_t nms_pre = 1000;
  int64_t max_per_img = 1000;
  double nms_iou = 0.7;
  double min_bbox_size = 0.0;
  int64_t max_per_batch = -1;  // Detectron's top-N over the whole batch; -1: off (mmdetection)

  // {"nms_pre", "max_per_img", "nms": {"type": "nms", "iou_threshold"}, "min_bbox_size", "max_per_batch"}
  static ProposalConfig from_config(const ConfigNode& cfg);
};

// model.train_cfg.rpn: how anchors are assigned and sampled for the RPN loss.
struct RpnTrainConfig {
  MaxIoUAssigner assigner;
  RandomSampler sampler;

  // {"assigner", "sampler", "allowed_border" (-1), "pos_weight" (-1), "debug" (false)}: the last
  // three only with the values gndet implements (every anchor inside the padded image is valid;
  // positives weigh 1).
  static RpnTrainConfig from_config(const ConfigNode& cfg);
};

// The "nms" dict of a proposal or detection config, {"type": "nms", "iou_threshold"}: the IoU threshold.
double nms_iou_from_config(const ConfigNode& nms);

// Raw head outputs, one entry per level.
struct RpnOutputs {
  std::vector<Tensor> cls;  // (N, A, H, W) logits
  std::vector<Tensor> reg;  // (N, 4A, H, W) deltas
};

class RPNHead : public nn::Module {
 public:
  // Builds from the rpn_head dict.
  RPNHead(const ConfigNode& head_cfg, Generator& gen);

  RpnOutputs forward(const std::vector<Tensor>& feats);
  // {"loss_rpn_cls", "loss_rpn_bbox"}.
  LossDict loss(const RpnOutputs& out, const std::vector<ImageTargets>& targets, const std::vector<ImageInfo>& infos,
                const RpnTrainConfig& train_cfg, Generator& gen) const;
  std::vector<Proposals> proposals(const RpnOutputs& out, const std::vector<ImageInfo>& infos,
                                   const ProposalConfig& cfg) const;

  const AnchorGenerator& anchor_generator() const { return anchors_; }

 private:
  // Every anchor of the batch's feature maps, concatenated over levels: (T, 4).
  Tensor all_anchors(const RpnOutputs& out) const;
  // (T) bool: anchors whose location lies inside the image's own padded area.
  Tensor valid_flags(const RpnOutputs& out, const ImageInfo& info) const;

  AnchorGenerator anchors_;
  DeltaXYWHCoder coder_;
  std::shared_ptr<nn::Conv2d> rpn_conv_, rpn_cls_, rpn_reg_;
};

}  // namespace gndet
