// Composite gradcheck cases of the detector's heads with their losses, and of the whole
// two-stage loss of a tiny Mask R-CNN with respect to every parameter.
//
// A detector's loss is a smooth function of its parameters only once the discrete choices are
// frozen: which anchors and proposals are positive, which are sampled, and the proposals
// themselves (gndet, like mmdetection, does not differentiate through proposal boxes: they are
// detached, so moving a parameter moves them without any gradient saying so). The cases freeze
// them as follows:
//   - sampling: every evaluation draws from a fresh Generator with the same seed, so with the same
//     assignment it picks the same anchors and RoIs;
//   - assignment: anchors and gt boxes do not depend on parameters, so the RPN's is fixed; the
//     proposals (and so the RoI head's assignment) are computed once, at the base point, and the
//     same proposals are reused by every perturbed evaluation.
#include "tensor/grad_mode.h"
#include "detection/checks/composite_util.h"
#include "detection/detector.h"
#include "ops/elementwise.h"
#include "ops/join.h"
#include "tensor/factory.h"

namespace gndet::checks {
namespace {

using autograd::CompositeCase;
using autograd::CompositeRegistrar;
using autograd::GradcheckOptions;

// A Mask R-CNN small enough to evaluate in milliseconds in float64: ResNet-18 with 8 stem
// channels (stages 8, 16, 32, 64), an 8-channel FPN with 5 levels, 4x4 RoI features, 3 classes,
// GN (4 groups) everywhere but the RPN, for 64 x 64 images.
const char* const kTinyMaskRCNN = R"({
 "type": "MaskRCNN",
 "backbone": {"type": "ResNet", "depth": 18, "stem_channels": 8, "base_channels": 8, "out_indices": [0, 1, 2, 3],
              "frozen_stages": -1, "style": "pytorch", "norm_cfg": {"type": "GN", "num_groups": 4}, "init_cfg": null},
 "neck": {"type": "FPN", "in_channels": [8, 16, 32, 64], "out_channels": 8, "num_outs": 5,
          "norm_cfg": {"type": "GN", "num_groups": 4}},
 "rpn_head": {"type": "RPNHead", "in_channels": 8, "feat_channels": 8,
   "anchor_generator": {"type": "AnchorGenerator", "scales": [4], "ratios": [0.5, 1.0, 2.0], "strides": [4, 8, 16, 32, 64]},
   "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0, 0, 0, 0], "target_stds": [1, 1, 1, 1]},
   "loss_cls": {"type": "CrossEntropyLoss", "use_sigmoid": true, "loss_weight": 1.0},
   "loss_bbox": {"type": "L1Loss", "loss_weight": 1.0}},
 "roi_head": {"type": "StandardRoIHead",
   "bbox_roi_extractor": {"type": "SingleRoIExtractor", "roi_layer": {"type": "RoIAlign", "output_size": 4, "sampling_ratio": 2},
                          "out_channels": 8, "featmap_strides": [4, 8, 16, 32], "finest_scale": 16},
   "bbox_head": {"type": "Shared4Conv1FCBBoxHead", "in_channels": 8, "conv_out_channels": 8, "fc_out_channels": 16,
                 "roi_feat_size": 4, "num_classes": 3, "norm_cfg": {"type": "GN", "num_groups": 4},
                 "bbox_coder": {"type": "DeltaXYWHBBoxCoder", "target_means": [0, 0, 0, 0], "target_stds": [0.1, 0.1, 0.2, 0.2]},
                 "reg_class_agnostic": false,
                 "loss_cls": {"type": "CrossEntropyLoss", "use_sigmoid": false, "loss_weight": 1.0},
                 "loss_bbox": {"type": "L1Loss", "loss_weight": 1.0}},
   "mask_roi_extractor": {"type": "SingleRoIExtractor", "roi_layer": {"type": "RoIAlign", "output_size": 4, "sampling_ratio": 2},
                          "out_channels": 8, "featmap_strides": [4, 8, 16, 32], "finest_scale": 16},
   "mask_head": {"type": "FCNMaskHead", "num_convs": 4, "in_channels": 8, "conv_out_channels": 8, "num_classes": 3,
                 "norm_cfg": {"type": "GN", "num_groups": 4},
                 "loss_mask": {"type": "CrossEntropyLoss", "use_mask": true, "loss_weight": 1.0}}},
 "train_cfg": {
   "rpn": {"assigner": {"type": "MaxIoUAssigner", "pos_iou_thr": 0.7, "neg_iou_thr": 0.3, "min_pos_iou": 0.3,
                        "match_low_quality": true, "ignore_iof_thr": -1},
           "sampler": {"type": "RandomSampler", "num": 32, "pos_fraction": 0.5, "neg_pos_ub": -1, "add_gt_as_proposals": false}},
   "rpn_proposal": {"nms_pre": 100, "max_per_img": 30, "nms": {"type": "nms", "iou_threshold": 0.7}, "min_bbox_size": 0},
   "rcnn": {"assigner": {"type": "MaxIoUAssigner", "pos_iou_thr": 0.5, "neg_iou_thr": 0.5, "min_pos_iou": 0.5,
                         "match_low_quality": true, "ignore_iof_thr": -1},
            "sampler": {"type": "RandomSampler", "num": 16, "pos_fraction": 0.25, "neg_pos_ub": -1, "add_gt_as_proposals": true},
            "mask_size": 8}},
 "test_cfg": {
   "rpn": {"nms_pre": 100, "max_per_img": 30, "nms": {"type": "nms", "iou_threshold": 0.7}, "min_bbox_size": 0},
   "rcnn": {"score_thr": 0.05, "nms": {"type": "nms", "iou_threshold": 0.5}, "max_per_img": 10, "mask_thr_binary": 0.5}}
})";

constexpr int64_t kImage = 64;
constexpr uint64_t kSamplingSeed = 77;

// The config and the ground truth every head case shares: two objects in a 64 x 64 image.
struct World {
  Json model = Json::parse(kTinyMaskRCNN);
  std::vector<ImageTargets> targets;
  std::vector<ImageInfo> infos;
  ConfigNode node(const std::string& key) const { return ConfigNode(model, "model")[key]; }
  ConfigNode train(const std::string& key) const { return ConfigNode(model["train_cfg"], "model.train_cfg")[key]; }
};

std::shared_ptr<World> make_world(DType dtype, Device device) {
  auto w = std::make_shared<World>();
  const std::vector<float> boxes = {8, 10, 40, 44, 30, 20, 60, 56};
  ImageTargets t;
  t.boxes = from_data<float>(boxes, {2, 4}).to(dtype).to(device);  // in the case's dtype, as the anchors
  t.labels = from_data<int64_t>({0, 2}, device);
  // Masks: the ellipse inscribed in each box.
  std::vector<uint8_t> masks(static_cast<size_t>(2 * kImage * kImage), 0);
  for (int g = 0; g < 2; ++g) {
    const double x1 = boxes[4 * g], y1 = boxes[4 * g + 1], x2 = boxes[4 * g + 2], y2 = boxes[4 * g + 3];
    const double cx = (x1 + x2) / 2, cy = (y1 + y2) / 2, rx = (x2 - x1) / 2, ry = (y2 - y1) / 2;
    for (int64_t y = 0; y < kImage; ++y) {
      for (int64_t x = 0; x < kImage; ++x) {
        const double dx = (static_cast<double>(x) + 0.5 - cx) / rx, dy = (static_cast<double>(y) + 0.5 - cy) / ry;
        masks[static_cast<size_t>((g * kImage + y) * kImage + x)] = dx * dx + dy * dy <= 1.0 ? 1 : 0;
      }
    }
  }
  t.masks = from_data<uint8_t>(masks, {2, kImage, kImage}, device);
  w->targets.push_back(t);
  ImageInfo info;
  info.image_id = 0;
  info.height = info.width = info.pad_height = info.pad_width = kImage;
  info.ori_height = info.ori_width = kImage;
  w->infos.push_back(info);
  return w;
}

// Feature maps of the FPN levels `strides` as leaves, 8 channels.
std::vector<Tensor> add_features(CompositeProblem& p, const std::vector<int64_t>& strides, uint64_t seed, DType dtype,
                                 Device device) {
  std::vector<Tensor> feats;
  for (size_t l = 0; l < strides.size(); ++l) {
    const int64_t s = kImage / strides[l];
    feats.push_back(add_input(p, "feats." + std::to_string(l), {1, 8, s, s}, seed + l, dtype, device));
  }
  return feats;
}

// Outputs of a loss dict: its "loss*" entries, in order ("acc" is not differentiable).
Tensors loss_terms(const LossDict& losses) {
  Tensors out;
  for (const auto& [name, v] : losses) {
    if (name.find("loss") != std::string::npos) out.push_back(v);
  }
  return out;
}

struct Owner {
  std::shared_ptr<World> world;
  std::vector<std::shared_ptr<nn::Module>> modules;
};

CompositeProblem rpn_head_loss(DType dtype, Device device) {
  CompositeProblem p;
  auto owner = std::make_shared<Owner>();
  owner->world = make_world(dtype, device);
  const World& w = *owner->world;
  Generator gen(60);
  auto head = std::make_shared<RPNHead>(w.node("rpn_head"), gen);
  owner->modules.push_back(head);
  generic_point(*head, gen);
  add_parameters(p, *head, dtype, device, "rpn_head.");
  const std::vector<Tensor> feats = add_features(p, {4, 8, 16, 32, 64}, 61, dtype, device);
  p.forward = [owner, head, feats] {
    const World& w = *owner->world;
    Generator sampling(kSamplingSeed);
    return loss_terms(head->loss(head->forward(feats), w.targets, w.infos, RpnTrainConfig::from_config(w.train("rpn")), sampling));
  };
  {
    autograd::NoGradGuard no_grad;
    const Tensors l = p.forward();
    GNDET_CHECK(l[1].item<double>() > 0.0, "rpn_head_loss: no positive anchor at the base point");
  }
  p.owner = owner;
  return p;
}

// The RoI head's inputs: 24 fixed proposals (the gts jittered, and random boxes), assigned and
// sampled once with the rcnn train config.
std::vector<SamplingResult> fixed_samples(const World& w, DType dtype, Device device) {
  autograd::NoGradGuard no_grad;
  Generator g(70);
  std::vector<double> boxes;
  const std::vector<float> gt = w.targets[0].boxes.to(kCPU).to_vector<float>();
  for (int k = 0; k < 24; ++k) {
    const double u1 = g.uniform(), u2 = g.uniform(), u3 = g.uniform(), u4 = g.uniform();
    if (k < 8) {  // near a gt: +-4 pixels per side
      const size_t b = static_cast<size_t>(4 * (k % 2));
      boxes.insert(boxes.end(), {gt[b] + 8 * u1 - 4, gt[b + 1] + 8 * u2 - 4, gt[b + 2] + 8 * u3 - 4, gt[b + 3] + 8 * u4 - 4});
    } else {
      const double x1 = 48 * u1, y1 = 48 * u2;
      boxes.insert(boxes.end(), {x1, y1, x1 + 6 + (60 - x1) * u3 * 0.8, y1 + 6 + (60 - y1) * u4 * 0.8});
    }
  }
  const Tensor proposals = from_data<double>(boxes, {24, 4}).to(dtype).to(device);
  const MaxIoUAssigner assigner = MaxIoUAssigner::from_config(w.train("rcnn")["assigner"]);
  const RandomSampler sampler = RandomSampler::from_config(w.train("rcnn")["sampler"]);
  Generator sampling(kSamplingSeed);
  const SamplingResult s =
      sampler.sample(assigner, proposals, w.targets[0].boxes.to(dtype), w.targets[0].labels, sampling);
  GNDET_CHECK(s.num_pos() > 0 && s.num_neg() > 0, "fixed_samples: expected positive and negative RoIs");
  return {s};
}

CompositeProblem roi_box_head_loss(DType dtype, Device device) {
  CompositeProblem p;
  auto owner = std::make_shared<Owner>();
  owner->world = make_world(dtype, device);
  const World& w = *owner->world;
  const ConfigNode roi = w.node("roi_head");
  Generator gen(80);
  auto head = std::make_shared<BBoxHead>(roi["bbox_head"], gen);
  owner->modules.push_back(head);
  generic_point(*head, gen);
  add_parameters(p, *head, dtype, device, "bbox_head.");
  const RoIExtractor extractor = RoIExtractor::from_config(roi["bbox_roi_extractor"]);
  const std::vector<Tensor> feats = add_features(p, {4, 8, 16, 32}, 81, dtype, device);
  const std::vector<SamplingResult> samples = fixed_samples(w, dtype, device);
  const Tensor rois = boxes_to_rois({cat({samples[0].pos_boxes, samples[0].neg_boxes}, 0)});
  p.forward = [head, extractor, feats, samples, rois] {
    return loss_terms(head->loss(head->forward(extractor(feats, rois)), samples));
  };
  p.owner = owner;
  return p;
}

CompositeProblem mask_head_loss(DType dtype, Device device) {
  CompositeProblem p;
  auto owner = std::make_shared<Owner>();
  owner->world = make_world(dtype, device);
  const World& w = *owner->world;
  const ConfigNode roi = w.node("roi_head");
  Generator gen(90);
  auto head = std::make_shared<MaskHead>(roi["mask_head"], gen);
  owner->modules.push_back(head);
  generic_point(*head, gen);
  add_parameters(p, *head, dtype, device, "mask_head.");
  const RoIExtractor extractor = RoIExtractor::from_config(roi["mask_roi_extractor"]);
  const std::vector<Tensor> feats = add_features(p, {4, 8, 16, 32}, 91, dtype, device);
  const std::vector<SamplingResult> samples = fixed_samples(w, dtype, device);
  const Tensor rois = boxes_to_rois({samples[0].pos_boxes});
  const std::vector<Tensor> gt_masks = {w.targets[0].masks};
  p.forward = [head, extractor, feats, samples, rois, gt_masks] {
    return loss_terms(head->loss(head->forward(extractor(feats, rois)), samples, gt_masks));
  };
  p.owner = owner;
  return p;
}

template <class M>
std::shared_ptr<M> child(nn::Module& m, const std::string& name) {
  for (const auto& [n, c] : m.named_children()) {
    if (n == name) return std::dynamic_pointer_cast<M>(c);
  }
  throw Error("two_stage_loss: the detector has no child '" + name + "'");
}

CompositeProblem two_stage_loss(DType dtype, Device device) {
  CompositeProblem p;
  auto owner = std::make_shared<Owner>();
  owner->world = make_world(dtype, device);
  const World& w = *owner->world;
  Generator gen(100);
  auto det = std::make_shared<TwoStageDetector>(w.model, gen);
  owner->modules.push_back(det);
  generic_point(*det, gen);
  add_parameters(p, *det, dtype, device);
  Tensor images;
  {
    autograd::NoGradGuard no_grad;
    Generator g(101);
    images = (rand({1, 3, kImage, kImage}, g, kFloat64) * 4.0 - 2.0).to(dtype).to(device);
  }
  auto backbone = child<ResNet>(*det, "backbone");
  auto neck = child<FPN>(*det, "neck");
  auto rpn = child<RPNHead>(*det, "rpn_head");
  auto roi = child<StandardRoIHead>(*det, "roi_head");
  // The proposals of the base point, reused by every evaluation (see the top of this file).
  std::vector<Proposals> proposals;
  {
    autograd::NoGradGuard no_grad;
    const RpnOutputs out = rpn->forward(neck->forward(backbone->forward(images)));
    proposals = rpn->proposals(out, w.infos, ProposalConfig::from_config(w.train("rpn_proposal")));
  }
  // The same sequence as TwoStageDetector::loss, with the proposals frozen.
  p.forward = [owner, backbone, neck, rpn, roi, images, proposals] {
    const World& w = *owner->world;
    Generator sampling(kSamplingSeed);
    const std::vector<Tensor> feats = neck->forward(backbone->forward(images));
    LossDict losses = rpn->loss(rpn->forward(feats), w.targets, w.infos, RpnTrainConfig::from_config(w.train("rpn")), sampling);
    for (auto& l : roi->loss(feats, proposals, w.targets, w.infos, RcnnTrainConfig::from_config(w.train("rcnn")), sampling)) losses.push_back(l);
    return loss_terms(losses);
  };
  p.owner = owner;
  return p;
}

GradcheckOptions sampled(int64_t per_input) {
  GradcheckOptions o;
  o.max_elements_per_input = per_input;
  o.directional = true;
  return o;
}

const char* const kFrozen =
    "sampling frozen: every evaluation samples from a fresh generator seeded alike; assignment fixed by fixed boxes";

const CompositeRegistrar reg_rpn({"rpn_head_loss",
                                  "RPNHead 8 channels, 3 anchors x 5 levels, 64 x 64 image, 2 gts: loss_rpn_cls, "
                                  "loss_rpn_bbox w.r.t. head and features",
                                  kFrozen, sampled(16), &rpn_head_loss});
const CompositeRegistrar reg_box({"roi_box_head_loss",
                                  "RoIAlign 4x4 from 4 levels + Shared4Conv1FC (GN) on 24 fixed proposals: "
                                  "loss_cls, loss_bbox w.r.t. head and features",
                                  kFrozen, sampled(12), &roi_box_head_loss});
const CompositeRegistrar reg_mask({"mask_head_loss",
                                   "RoIAlign 4x4 + FCNMaskHead (4 GN convs, deconv, 3 classes) on the positive RoIs: "
                                   "loss_mask w.r.t. head and features",
                                   kFrozen, sampled(16), &mask_head_loss});
const CompositeRegistrar reg_two_stage({"two_stage_loss",
                                        "tiny Mask R-CNN (ResNet-18/8, FPN 8, GN), one 64 x 64 image: all 5 losses "
                                        "w.r.t. every parameter",
                                        "proposals computed once at the base point and reused; sampling from a fresh "
                                        "generator seeded alike in every evaluation",
                                        sampled(1), &two_stage_loss});

}  // namespace
}  // namespace gndet::checks
