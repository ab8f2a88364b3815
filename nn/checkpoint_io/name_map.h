// Checkpoint names -> gndet's, which are mmdetection's state_dict keys.
//
// Each source is a table of rules (a regular expression over the whole file key and the gndet key
// it becomes; "{2}" is capture 2, "{1-1}" capture 1 minus 1, "{1-2}" minus 2), written out in
// name_map.cpp so that a reader can check it line by line against the two naming schemes:
//   mmdet       identity; a "module." prefix (DataParallel) is removed, as mmengine does, and a
//               backbone-only file (conv1.weight, layer1.0...) gets the "backbone." prefix
//   detectron   Detectron / Caffe2 blobs: ImageNet GN backbones (conv1_w, conv1_gn_s,
//               res2_0_branch2a_w, res2_0_branch1_gn_b, ...; fc1000 dropped) and the final GN Mask
//               R-CNN models (FPN fpn_inner_res5_2_sum..., RPN conv_rpn_fpn2, 4conv1fc head
//               head_conv1..fc6, mask head _[mask]_fcn1..conv5_mask..mask_fcn_logits). Its classes
//               put background first; mmdetection's put it last: cls_score rows are rotated,
//               and the background's rows of the class-specific bbox_pred / mask logits dropped.
//   detectron2  detectron2 GN models (backbone.bottom_up.res2.0.conv1.norm.weight, fpn_lateral2,
//               proposal_generator.rpn_head, roi_heads.box_head.conv1 / fc1, box_predictor,
//               mask_head.mask_fcn1 / deconv / predictor); detectron2 already puts background last.
// File keys that no rule maps are reported by name (not silently dropped), and so are the ones a
// rule drops on purpose (fc1000, *_momentum); missing keys are reported when the result is
// compared with a model (Module::compare_state_dict).
#pragma once

#include <string>
#include <vector>

#include "nn/checkpoint_io/torch_file.h"
#include "nn/module.h"

namespace gndet::nn::ckpt {

enum class NameSource { Auto, MMDet, Detectron, Detectron2 };

// "mmdet" / "detectron" / "detectron2" / "auto"; throws naming the accepted values.
NameSource parse_name_source(const std::string& s);
const char* name_source_str(NameSource s);

// By the keys: bottom_up / proposal_generator -> detectron2; Caffe2-style blobs (conv1_w,
// res2_0_branch2a_w, fpn_inner_...) -> detectron; anything else -> mmdet.
NameSource detect_name_source(const NamedTensors& tensors);

struct MappedWeights {
  NameSource source = NameSource::MMDet;
  StateDict tensors;                 // gndet names
  std::vector<std::string> unmapped; // file keys no rule maps
  std::vector<std::string> dropped;  // file keys dropped on purpose (classifier, momenta)
};

MappedWeights map_names(const NamedTensors& tensors, NameSource source);

// "unmapped keys: a, b; dropped: c" (empty when both are empty).
std::string mapping_summary(const MappedWeights& m);

}  // namespace gndet::nn::ckpt
