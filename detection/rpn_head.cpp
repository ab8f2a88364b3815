#include "detection/rpn_head.h"

#include <cmath>

#include "detection/layer_config.h"
#include "tensor/grad_mode.h"
#include "nn/init.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/loss.h"
#include "ops/nms.h"
#include "ops/sort.h"
#include "tensor/factory.h"

namespace gndet {

double nms_iou_from_config(const ConfigNode& nms) {
  nms.type({"nms"});
  nms.check_keys({"type", "iou_threshold"});
  return nms["iou_threshold"].as_double();
}

RpnTrainConfig RpnTrainConfig::from_config(const ConfigNode& cfg) {
  cfg.check_keys({"assigner", "sampler", "allowed_border", "pos_weight", "debug"});
  check_unsupported_train_keys(cfg);
  GNDET_CHECK(cfg.get_int("allowed_border", -1) < 0, "config ", cfg.path(),
              ".allowed_border: only -1 (every anchor inside the padded image is used) is supported");
  return {MaxIoUAssigner::from_config(cfg["assigner"]), RandomSampler::from_config(cfg["sampler"])};
}

ProposalConfig ProposalConfig::from_config(const ConfigNode& cfg) {
  cfg.check_keys({"nms_pre", "max_per_img", "nms", "min_bbox_size", "max_per_batch"});
  ProposalConfig c;
  c.nms_pre = cfg.get_int("nms_pre", 1000);
  c.max_per_img = cfg.get_int("max_per_img", 1000, 0, INT64_MAX);
  c.nms_iou = nms_iou_from_config(cfg["nms"]);
  c.min_bbox_size = cfg.get_double("min_bbox_size", 0.0);
  c.max_per_batch = cfg.get_int("max_per_batch", -1);
  return c;
}

namespace {

std::shared_ptr<nn::Conv2d> head_conv(int64_t in, int64_t out, int64_t k, Generator& gen) {
  nn::Conv2dOptions o;
  o.in_channels = in;
  o.out_channels = out;
  o.kernel = {k, k};
  o.padding = {k / 2, k / 2};
  auto conv = std::make_shared<nn::Conv2d>(o, gen);
  nn::init::normal(conv->weight(), gen, 0.0, 0.01);
  nn::init::constant(conv->bias(), 0.0);
  return conv;
}

// (N, A*k, H, W) -> (N, H*W*A, k): the anchor order of AnchorGenerator::grid_anchors.
Tensor flatten_level(const Tensor& t, int64_t k) {
  const int64_t N = t.size(0);
  return t.permute({0, 2, 3, 1}).reshape({N, -1, k});
}

}  // namespace

RPNHead::RPNHead(const ConfigNode& cfg, Generator& gen)
    : anchors_(AnchorGenerator::from_config(cfg["anchor_generator"])),
      coder_(DeltaXYWHCoder::from_config(cfg["bbox_coder"])) {
  cfg.type({"RPNHead"});
  cfg.check_keys({"type", "in_channels", "feat_channels", "anchor_generator", "bbox_coder", "loss_cls", "loss_bbox"});
  const ConfigNode loss_cls = cfg["loss_cls"];
  check_loss(loss_cls, "CrossEntropyLoss");
  GNDET_CHECK(loss_cls.get_bool("use_sigmoid", false), "config ", loss_cls.path(),
              ": the RPN needs use_sigmoid=true (one objectness logit per anchor)");
  check_loss(cfg["loss_bbox"], "L1Loss");
  const int64_t in = cfg["in_channels"].as_int(), feat = cfg.get_int("feat_channels", 256);
  const int64_t A = anchors_.num_base_anchors();
  rpn_conv_ = register_module("rpn_conv", head_conv(in, feat, 3, gen));
  rpn_cls_ = register_module("rpn_cls", head_conv(feat, A, 1, gen));
  rpn_reg_ = register_module("rpn_reg", head_conv(feat, 4 * A, 1, gen));
}

RpnOutputs RPNHead::forward(const std::vector<Tensor>& feats) {
  GNDET_CHECK(static_cast<int64_t>(feats.size()) == anchors_.num_levels(), "RPNHead: ", feats.size(),
              " feature maps for ", anchors_.num_levels(), " anchor strides");
  nn::ModuleScope scope(this);
  RpnOutputs out;
  for (const Tensor& f : feats) {
    const Tensor x = relu(rpn_conv_->forward(f));
    out.cls.push_back(rpn_cls_->forward(x));
    out.reg.push_back(rpn_reg_->forward(x));
  }
  return out;
}

Tensor RPNHead::all_anchors(const RpnOutputs& out) const {
  Tensors levels;
  for (size_t l = 0; l < out.cls.size(); ++l) {
    levels.push_back(anchors_.grid_anchors(static_cast<int64_t>(l), out.cls[l].size(2), out.cls[l].size(3),
                                           out.cls[l].options()));
  }
  return cat(levels, 0);
}

Tensor RPNHead::valid_flags(const RpnOutputs& out, const ImageInfo& info) const {
  std::vector<bool> flags;
  const int64_t A = anchors_.num_base_anchors();
  for (size_t l = 0; l < out.cls.size(); ++l) {
    const int64_t H = out.cls[l].size(2), W = out.cls[l].size(3);
    const double stride = static_cast<double>(anchors_.stride(static_cast<int64_t>(l)));
    const int64_t vh = std::min<int64_t>(H, static_cast<int64_t>(std::ceil(static_cast<double>(info.pad_height) / stride)));
    const int64_t vw = std::min<int64_t>(W, static_cast<int64_t>(std::ceil(static_cast<double>(info.pad_width) / stride)));
    for (int64_t y = 0; y < H; ++y) {
      for (int64_t x = 0; x < W; ++x) flags.insert(flags.end(), static_cast<size_t>(A), y < vh && x < vw);
    }
  }
  return from_data<bool>(flags, out.cls[0].device());
}

LossDict RPNHead::loss(const RpnOutputs& out, const std::vector<ImageTargets>& targets,
                       const std::vector<ImageInfo>& infos, const RpnTrainConfig& train_cfg, Generator& gen) const {
  const int64_t N = out.cls[0].size(0);
  GNDET_CHECK(static_cast<int64_t>(targets.size()) == N && static_cast<int64_t>(infos.size()) == N, "RPNHead::loss: ",
              N, " images but ", targets.size(), " targets and ", infos.size(), " infos");
  nn::ModuleScope scope(this);
  const MaxIoUAssigner& assigner = train_cfg.assigner;
  const RandomSampler& sampler = train_cfg.sampler;
  const Tensor anchors = all_anchors(out);
  Tensors cls_levels, reg_levels;
  for (size_t l = 0; l < out.cls.size(); ++l) {
    cls_levels.push_back(flatten_level(out.cls[l], 1).squeeze(2));
    reg_levels.push_back(flatten_level(out.reg[l], 4));
  }
  const Tensor cls = cat(cls_levels, 1);  // (N, T)
  const Tensor reg = cat(reg_levels, 1);  // (N, T, 4)

  Tensors cls_terms, reg_terms;
  int64_t num_sampled = 0;
  for (int64_t i = 0; i < N; ++i) {
    Tensor sampled, labels, pos, deltas;
    {
      autograd::NoGradGuard no_grad;
      const Tensor valid = nonzero_1d(valid_flags(out, infos[i]));
      const Tensor cand = index_select(anchors, 0, valid);
      const SamplingResult s = sampler.sample(assigner, cand, targets[i].boxes, targets[i].labels, gen);
      pos = index_select(valid, 0, s.pos_inds);
      sampled = cat({pos, index_select(valid, 0, s.neg_inds)}, 0);
      labels = cat({ones({s.num_pos()}, cls.options()), zeros({s.num_neg()}, cls.options())}, 0);
      deltas = coder_.encode(s.pos_boxes, s.pos_gt_boxes.to(cls.dtype()));
      num_sampled += sampled.numel();
    }
    cls_terms.push_back(binary_cross_entropy_with_logits(index_select(cls.select(0, i), 0, sampled), labels, Tensor(),
                                                         Reduction::Sum));
    reg_terms.push_back(l1_loss(index_select(reg.select(0, i), 0, pos), deltas, Reduction::Sum));
  }
  const double avg = static_cast<double>(std::max<int64_t>(num_sampled, 1));
  Tensor loss_cls = cls_terms[0], loss_reg = reg_terms[0];
  for (int64_t i = 1; i < N; ++i) {
    loss_cls = loss_cls + cls_terms[i];
    loss_reg = loss_reg + reg_terms[i];
  }
  return {{"loss_rpn_cls", loss_cls / avg}, {"loss_rpn_bbox", loss_reg / avg}};
}

std::vector<Proposals> RPNHead::proposals(const RpnOutputs& out, const std::vector<ImageInfo>& infos,
                                          const ProposalConfig& cfg) const {
  autograd::NoGradGuard no_grad;
  const int64_t N = out.cls[0].size(0);
  GNDET_CHECK(static_cast<int64_t>(infos.size()) == N, "RPNHead::proposals: ", N, " images but ", infos.size(), " infos");
  std::vector<Proposals> result;
  for (int64_t i = 0; i < N; ++i) {
    Tensors scores, deltas, priors, level_ids;
    for (size_t l = 0; l < out.cls.size(); ++l) {
      Tensor s = sigmoid(flatten_level(out.cls[l].select(0, i).unsqueeze(0).detach(), 1).reshape({-1}));
      Tensor d = flatten_level(out.reg[l].select(0, i).unsqueeze(0).detach(), 4).squeeze(0);
      Tensor a = anchors_.grid_anchors(static_cast<int64_t>(l), out.cls[l].size(2), out.cls[l].size(3), s.options());
      if (cfg.nms_pre > 0 && s.numel() > cfg.nms_pre) {
        const ValuesIndices top = topk(s, cfg.nms_pre);
        s = top.values;
        d = index_select(d, 0, top.indices);
        a = index_select(a, 0, top.indices);
      }
      level_ids.push_back(full({s.numel()}, static_cast<double>(l), TensorOptions(kInt64, s.device())));
      scores.push_back(s);
      deltas.push_back(d);
      priors.push_back(a);
    }
    Tensor score = cat(scores, 0), ids = cat(level_ids, 0);
    Tensor boxes = coder_.decode(cat(priors, 0), cat(deltas, 0), {infos[i].height, infos[i].width});
    if (cfg.min_bbox_size >= 0) {
      const Tensor w = boxes.select(1, 2) - boxes.select(1, 0), h = boxes.select(1, 3) - boxes.select(1, 1);
      const Tensor keep = nonzero_1d(logical_and(gt(w, cfg.min_bbox_size), gt(h, cfg.min_bbox_size)));
      if (keep.numel() < boxes.size(0)) {
        boxes = index_select(boxes, 0, keep);
        score = index_select(score, 0, keep);
        ids = index_select(ids, 0, keep);
      }
    }
    Tensor keep = batched_nms(boxes, score, ids, cfg.nms_iou);
    if (keep.numel() > cfg.max_per_img) keep = keep.narrow(0, 0, cfg.max_per_img);
    result.push_back({index_select(boxes, 0, keep), index_select(score, 0, keep)});
  }
  if (cfg.max_per_batch > 0) {
    // Detectron: the best max_per_batch proposals of the whole batch, each staying with its image.
    Tensors all;
    for (const Proposals& p : result) all.push_back(p.scores);
    const Tensor joined = cat(all, 0);
    if (joined.numel() > cfg.max_per_batch) {
      const double cutoff = topk(joined, cfg.max_per_batch).values.narrow(0, cfg.max_per_batch - 1, 1).item<double>();
      for (Proposals& p : result) {
        const Tensor keep = nonzero_1d(ge(p.scores, cutoff));
        p.boxes = index_select(p.boxes, 0, keep);
        p.scores = index_select(p.scores, 0, keep);
      }
    }
  }
  return result;
}

}  // namespace gndet
