// FCNMaskHead (mmdetection): per-class masks for the positive RoIs.
//
//   convs.i: 3x3 ConvModule (norm, ReLU), 4 of them; upsample: 2x2/2 ConvTranspose2d + ReLU;
//   conv_logits: 1x1 conv -> C maps of 2S x 2S (28 x 28 for 14 x 14 RoI features).
// upsample and conv_logits start from kaiming_normal(fan_out), biases 0.
//
// Targets: each positive RoI crops its gt mask with RoIAlign (aligned, adaptive sampling) to
// 28 x 28, thresholded at 0.5 (mmdetection's BitmapMasks.crop_and_resize). The loss is the mean
// binary cross-entropy of the gt class's logits over all pixels of all positive RoIs.
#pragma once

#include "detection/layer_config.h"
#include "detection/sampler.h"
#include "detection/structures.h"
#include "nn/layers.h"

namespace gndet {

class MaskHead : public nn::Module {
 public:
  // {"type": "FCNMaskHead", "num_convs", "in_channels", "conv_out_channels", "num_classes",
  //  "norm_cfg", "conv_cfg", "loss_mask"}
  MaskHead(const ConfigNode& cfg, Generator& gen);

  Tensor forward(const Tensor& roi_feats);  // (P, in, S, S) -> (P, C, 2S, 2S) logits
  // gt_masks[i]: (G_i, H, W) uint8 of image i; samples[i] its sampling result.
  LossDict loss(const Tensor& mask_logits, const std::vector<SamplingResult>& samples,
                const std::vector<Tensor>& gt_masks) const;
  // One image: logits (D, C, M, M) of its detections -> (D, ori_h, ori_w) uint8 masks.
  Tensor predict(const Tensor& mask_logits, const Tensor& labels, const Tensor& boxes_original, const ImageInfo& info,
                 double threshold) const;

  // RoIAlign crops of gt masks: (P, size, size) float in {0, 1}.
  static Tensor targets(const Tensor& gt_masks, const Tensor& pos_boxes, const Tensor& pos_gt_inds, int64_t size);

 private:
  int64_t num_classes_;
  std::shared_ptr<nn::Sequential> convs_;
  std::shared_ptr<nn::ConvTranspose2d> upsample_;
  std::shared_ptr<nn::Conv2d> conv_logits_;
};

}  // namespace gndet
