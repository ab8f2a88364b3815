#include "detection/mask_head.h"

#include "tensor/grad_mode.h"
#include "nn/init.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/loss.h"
#include "ops/paste_masks.h"
#include "ops/reduce.h"
#include "ops/roi_align.h"
#include "tensor/factory.h"

namespace gndet {

MaskHead::MaskHead(const ConfigNode& cfg, Generator& gen) {
  cfg.type({"FCNMaskHead"});
  cfg.check_keys({"type", "loss_mask", "num_classes", "num_convs", "in_channels", "conv_out_channels", "norm_cfg", "conv_cfg", "upsample_cfg"});
  const ConfigNode loss = cfg["loss_mask"];
  check_loss(loss, "CrossEntropyLoss");
  GNDET_CHECK(loss.get_bool("use_mask", false), "config ", loss.path(), ": the mask loss needs use_mask=true");
  num_classes_ = cfg["num_classes"].as_int();
  const int64_t num_convs = cfg.get_int("num_convs", 4), in = cfg.get_int("in_channels", 256);
  const int64_t width = cfg.get_int("conv_out_channels", 256);
  const NormSpec norm = norm_from_config(cfg);
  const bool ws = ws_from_config(cfg);
  GNDET_CHECK(!cfg.has("upsample_cfg") || cfg["upsample_cfg"].type({"deconv"}) == "deconv", "config ", cfg.path(),
              ".upsample_cfg: only deconv is supported");

  convs_ = register_module("convs", std::make_shared<nn::Sequential>());
  int64_t channels = in;
  for (int64_t i = 0; i < num_convs; ++i) {
    convs_->push_back(std::make_shared<nn::ConvModule>(conv_module_options(channels, width, 3, norm, ws, true), gen));
    channels = width;
  }
  nn::ConvTranspose2dOptions up;
  up.in_channels = channels;
  up.out_channels = width;
  up.kernel = {2, 2};
  up.stride = {2, 2};
  upsample_ = register_module("upsample", std::make_shared<nn::ConvTranspose2d>(up, gen));
  nn::Conv2dOptions logits;
  logits.in_channels = width;
  logits.out_channels = num_classes_;
  conv_logits_ = register_module("conv_logits", std::make_shared<nn::Conv2d>(logits, gen));
  for (const Tensor& w : {upsample_->weight(), conv_logits_->weight()}) {
    nn::init::kaiming_normal(w, gen, nn::init::FanMode::FanOut, nn::init::Nonlinearity::ReLU);
  }
  nn::init::constant(upsample_->bias(), 0.0);
  nn::init::constant(conv_logits_->bias(), 0.0);
}

Tensor MaskHead::forward(const Tensor& roi_feats) {
  nn::ModuleScope scope(this);
  Tensor x = roi_feats;
  for (size_t i = 0; i < convs_->size(); ++i) x = (*convs_)[i]->forward(x);
  return conv_logits_->forward(relu(upsample_->forward(x)));
}

Tensor MaskHead::targets(const Tensor& gt_masks, const Tensor& pos_boxes, const Tensor& pos_gt_inds, int64_t size) {
  autograd::NoGradGuard no_grad;
  const int64_t P = pos_boxes.size(0);
  if (P == 0) return empty({0, size, size}, pos_boxes.options());
  const Tensor masks = gt_masks.to(pos_boxes.dtype()).unsqueeze(1);  // (G, 1, H, W)
  const Tensor rois = cat({pos_gt_inds.to(pos_boxes.dtype()).unsqueeze(1), pos_boxes}, 1);
  const Tensor crops = roi_align(masks, rois, {size, size, 1.0, 0, true}).squeeze(1);
  return ge(crops, 0.5).to(pos_boxes.dtype());
}

namespace {
// logits (P, C, M, M) -> (P, M, M): each row's channel for its label.
Tensor pick_class(const Tensor& logits, const Tensor& labels) {
  const int64_t P = logits.size(0), M = logits.size(2) * logits.size(3);
  const Tensor idx = labels.reshape({P, 1, 1}).expand({P, 1, M}).contiguous();
  return gather(logits.reshape({P, logits.size(1), M}), 1, idx).reshape({P, logits.size(2), logits.size(3)});
}
}  // namespace

LossDict MaskHead::loss(const Tensor& mask_logits, const std::vector<SamplingResult>& samples,
                        const std::vector<Tensor>& gt_masks) const {
  nn::ModuleScope scope(this);
  GNDET_CHECK(samples.size() == gt_masks.size(), "MaskHead::loss: ", samples.size(), " images but ", gt_masks.size(),
              " mask sets");
  Tensor labels, target;
  {
    autograd::NoGradGuard no_grad;
    Tensors label_parts, target_parts;
    for (size_t i = 0; i < samples.size(); ++i) {
      GNDET_CHECK(gt_masks[i].defined(), "MaskHead::loss: image ", i, " has no gt masks (LoadAnnotations with_mask?)");
      label_parts.push_back(samples[i].pos_gt_labels);
      target_parts.push_back(targets(gt_masks[i], samples[i].pos_boxes.to(mask_logits.dtype()), samples[i].pos_gt_inds,
                                     mask_logits.size(2)));
    }
    labels = cat(label_parts, 0);
    target = cat(target_parts, 0);
  }
  if (labels.numel() == 0) return {{"loss_mask", sum(mask_logits) * 0.0}};
  return {{"loss_mask", binary_cross_entropy_with_logits(pick_class(mask_logits, labels), target)}};
}

Tensor MaskHead::predict(const Tensor& mask_logits, const Tensor& labels, const Tensor& boxes_original,
                         const ImageInfo& info, double threshold) const {
  autograd::NoGradGuard no_grad;
  if (labels.numel() == 0) return zeros({0, info.ori_height, info.ori_width}, TensorOptions(kUInt8, labels.device()));
  const Tensor probs = sigmoid(pick_class(mask_logits, labels));
  return paste_masks(probs, boxes_original, info.ori_height, info.ori_width, threshold);
}

}  // namespace gndet
