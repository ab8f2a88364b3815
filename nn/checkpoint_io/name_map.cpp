#include "nn/checkpoint_io/name_map.h"

#include <cstring>
#include <numeric>
#include <regex>

#include "tensor/factory.h"

namespace gndet::nn::ckpt {
namespace {

// What happens to the tensor besides its new name.
enum class Fix {
  None,
  Drop,         // not part of the detector (ImageNet classifier)
  BgFirstRows,  // Detectron class scores: rows [bg, c1..cK] -> [c1..cK, bg]
  DropBgBox,    // Detectron class-specific box deltas: the background's 4 rows go
  DropBgRow,    // Detectron class-specific mask logits: the background's row goes (when > 1 row)
};

struct Rule {
  const char* from;  // regular expression matched against the whole key
  const char* to;    // "{n}" capture n, "{n-k}" capture n minus k, "{n:wb}" w/s -> weight, b -> bias
  Fix fix = Fix::None;
};

// ---- Detectron / Caffe2 blobs ------------------------------------------------------------------
// A GN ConvModule in Caffe2: <name>_w, <name>_b (only without GN), <name>_gn_s, <name>_gn_b.
const std::vector<Rule>& detectron_rules() {
  static const std::vector<Rule> rules = {
      // ImageNet GN ResNet / ResNeXt backbone (R-50-GN.pkl, R-101-GN.pkl, X-101-32x8d-GN ...)
      {R"(conv1_w)", "backbone.conv1.weight"},
      {R"(conv1_gn_(s|b))", "backbone.gn1.{1:wb}"},
      {R"(res(\d)_(\d+)_branch2a_w)", "backbone.layer{1-1}.{2}.conv1.weight"},
      {R"(res(\d)_(\d+)_branch2a_gn_(s|b))", "backbone.layer{1-1}.{2}.gn1.{3:wb}"},
      {R"(res(\d)_(\d+)_branch2b_w)", "backbone.layer{1-1}.{2}.conv2.weight"},
      {R"(res(\d)_(\d+)_branch2b_gn_(s|b))", "backbone.layer{1-1}.{2}.gn2.{3:wb}"},
      {R"(res(\d)_(\d+)_branch2c_w)", "backbone.layer{1-1}.{2}.conv3.weight"},
      {R"(res(\d)_(\d+)_branch2c_gn_(s|b))", "backbone.layer{1-1}.{2}.gn3.{3:wb}"},
      {R"(res(\d)_(\d+)_branch1_w)", "backbone.layer{1-1}.{2}.downsample.0.weight"},
      {R"(res(\d)_(\d+)_branch1_gn_(s|b))", "backbone.layer{1-1}.{2}.downsample.1.{3:wb}"},
      {R"(fc1000_(w|b))", "", Fix::Drop},
      {R"(pred_(w|b))", "", Fix::Drop},  // the ImageNet classifier under Caffe2's other usual name
      // FPN: the top lateral is fpn_inner_res5_<last>_sum, the others ..._sum_lateral; outputs fpn_res<k>_<last>_sum
      {R"(fpn_inner_res5_\d+_sum_(w|b))", "neck.lateral_convs.3.conv.{1:wb}"},
      {R"(fpn_inner_res5_\d+_sum_gn_(s|b))", "neck.lateral_convs.3.gn.{1:wb}"},
      {R"(fpn_inner_res(\d)_\d+_sum_lateral_(w|b))", "neck.lateral_convs.{1-2}.conv.{2:wb}"},
      {R"(fpn_inner_res(\d)_\d+_sum_lateral_gn_(s|b))", "neck.lateral_convs.{1-2}.gn.{2:wb}"},
      {R"(fpn_res(\d)_\d+_sum_(w|b))", "neck.fpn_convs.{1-2}.conv.{2:wb}"},
      {R"(fpn_res(\d)_\d+_sum_gn_(s|b))", "neck.fpn_convs.{1-2}.gn.{2:wb}"},
      // RPN on FPN: parameters live on the lowest level (fpn2) and are shared by the others
      {R"(conv_rpn_fpn2_(w|b))", "rpn_head.rpn_conv.{1:wb}"},
      {R"(rpn_cls_logits_fpn2_(w|b))", "rpn_head.rpn_cls.{1:wb}"},
      {R"(rpn_bbox_pred_fpn2_(w|b))", "rpn_head.rpn_reg.{1:wb}"},
      // box head: 4conv1fc with GN (head_conv1..4, fc6), or 2fc (fc6, fc7)
      {R"(head_conv(\d)_w)", "roi_head.bbox_head.shared_convs.{1-1}.conv.weight"},
      {R"(head_conv(\d)_gn_(s|b))", "roi_head.bbox_head.shared_convs.{1-1}.gn.{2:wb}"},
      {R"(fc6_(w|b))", "roi_head.bbox_head.shared_fcs.0.{1:wb}"},
      {R"(fc7_(w|b))", "roi_head.bbox_head.shared_fcs.1.{1:wb}"},
      {R"(cls_score_(w|b))", "roi_head.bbox_head.fc_cls.{1:wb}", Fix::BgFirstRows},
      {R"(bbox_pred_(w|b))", "roi_head.bbox_head.fc_reg.{1:wb}", Fix::DropBgBox},
      // mask head: 4 GN convs (_[mask]_fcn1..4), the deconvolution, the per-class logits
      {R"(_\[mask\]_fcn(\d)_w)", "roi_head.mask_head.convs.{1-1}.conv.weight"},
      {R"(_\[mask\]_fcn(\d)_gn_(s|b))", "roi_head.mask_head.convs.{1-1}.gn.{2:wb}"},
      {R"(conv5_mask_(w|b))", "roi_head.mask_head.upsample.{1:wb}"},
      {R"(mask_fcn_logits_(w|b))", "roi_head.mask_head.conv_logits.{1:wb}", Fix::DropBgRow},
  };
  return rules;
}

// ---- detectron2 ---------------------------------------------------------------------------------
const std::vector<Rule>& detectron2_rules() {
  static const std::vector<Rule> rules = {
      {R"(backbone\.bottom_up\.stem\.conv1\.weight)", "backbone.conv1.weight"},
      {R"(backbone\.bottom_up\.stem\.conv1\.norm\.(weight|bias))", "backbone.gn1.{1}"},
      {R"(backbone\.bottom_up\.res(\d)\.(\d+)\.conv(\d)\.weight)", "backbone.layer{1-1}.{2}.conv{3}.weight"},
      {R"(backbone\.bottom_up\.res(\d)\.(\d+)\.conv(\d)\.norm\.(weight|bias))", "backbone.layer{1-1}.{2}.gn{3}.{4}"},
      {R"(backbone\.bottom_up\.res(\d)\.(\d+)\.shortcut\.weight)", "backbone.layer{1-1}.{2}.downsample.0.weight"},
      {R"(backbone\.bottom_up\.res(\d)\.(\d+)\.shortcut\.norm\.(weight|bias))", "backbone.layer{1-1}.{2}.downsample.1.{3}"},
      {R"(backbone\.fpn_lateral(\d)\.(weight|bias))", "neck.lateral_convs.{1-2}.conv.{2}"},
      {R"(backbone\.fpn_lateral(\d)\.norm\.(weight|bias))", "neck.lateral_convs.{1-2}.gn.{2}"},
      {R"(backbone\.fpn_output(\d)\.(weight|bias))", "neck.fpn_convs.{1-2}.conv.{2}"},
      {R"(backbone\.fpn_output(\d)\.norm\.(weight|bias))", "neck.fpn_convs.{1-2}.gn.{2}"},
      {R"(proposal_generator\.rpn_head\.conv\.(weight|bias))", "rpn_head.rpn_conv.{1}"},
      {R"(proposal_generator\.rpn_head\.objectness_logits\.(weight|bias))", "rpn_head.rpn_cls.{1}"},
      {R"(proposal_generator\.rpn_head\.anchor_deltas\.(weight|bias))", "rpn_head.rpn_reg.{1}"},
      {R"(roi_heads\.box_head\.conv(\d)\.weight)", "roi_head.bbox_head.shared_convs.{1-1}.conv.weight"},
      {R"(roi_heads\.box_head\.conv(\d)\.norm\.(weight|bias))", "roi_head.bbox_head.shared_convs.{1-1}.gn.{2}"},
      {R"(roi_heads\.box_head\.fc(\d)\.(weight|bias))", "roi_head.bbox_head.shared_fcs.{1-1}.{2}"},
      {R"(roi_heads\.box_predictor\.cls_score\.(weight|bias))", "roi_head.bbox_head.fc_cls.{1}"},
      {R"(roi_heads\.box_predictor\.bbox_pred\.(weight|bias))", "roi_head.bbox_head.fc_reg.{1}"},
      {R"(roi_heads\.mask_head\.mask_fcn(\d)\.weight)", "roi_head.mask_head.convs.{1-1}.conv.weight"},
      {R"(roi_heads\.mask_head\.mask_fcn(\d)\.norm\.(weight|bias))", "roi_head.mask_head.convs.{1-1}.gn.{2}"},
      {R"(roi_heads\.mask_head\.deconv\.(weight|bias))", "roi_head.mask_head.upsample.{1}"},
      {R"(roi_heads\.mask_head\.predictor\.(weight|bias))", "roi_head.mask_head.conv_logits.{1}"},
  };
  return rules;
}

struct CompiledRule {
  std::regex re;
  const Rule* rule;
};

std::vector<CompiledRule> compile(const std::vector<Rule>& rules) {
  std::vector<CompiledRule> out;
  for (const Rule& r : rules) out.push_back({std::regex(r.from), &r});
  return out;
}

// Expands "{n}", "{n-k}", "{n:wb}" in `to` from the match.
std::string expand(const std::string& to, const std::smatch& m) {
  std::string out;
  for (size_t i = 0; i < to.size(); ++i) {
    if (to[i] != '{') {
      out.push_back(to[i]);
      continue;
    }
    const size_t close = to.find('}', i);
    const std::string spec = to.substr(i + 1, close - i - 1);
    const int n = spec[0] - '0';
    const std::string cap = m[n].str();
    if (spec.size() == 1) {
      out += cap;
    } else if (spec[1] == '-') {
      out += std::to_string(std::stoi(cap) - (spec[2] - '0'));
    } else {  // ":wb"
      out += cap == "b" ? "bias" : "weight";
    }
    i = close;
  }
  return out;
}

Tensor take_rows(const Tensor& t, const std::vector<int64_t>& rows) {
  Shape shape = t.shape();
  shape[0] = static_cast<int64_t>(rows.size());
  Tensor out = empty(shape, t.dtype());
  const size_t row_bytes = static_cast<size_t>(t.numel() / std::max<int64_t>(t.size(0), 1)) * t.element_size();
  const char* src = static_cast<const char*>(t.raw_data());
  char* dst = static_cast<char*>(out.raw_data());
  for (size_t r = 0; r < rows.size(); ++r) std::memcpy(dst + r * row_bytes, src + rows[r] * row_bytes, row_bytes);
  return out;
}

Tensor apply_fix(Fix fix, const Tensor& t, const std::string& key) {
  if (fix == Fix::None) return t;
  GNDET_CHECK(t.dim() >= 1, "checkpoint key '", key, "': expected at least one dimension, got ", shape_str(t.shape()));
  const int64_t n = t.size(0);
  std::vector<int64_t> rows;
  switch (fix) {
    case Fix::BgFirstRows:
      GNDET_CHECK(n >= 2, "checkpoint key '", key, "': class scores with ", n, " rows");
      rows.resize(n - 1);
      std::iota(rows.begin(), rows.end(), 1);
      rows.push_back(0);
      break;
    case Fix::DropBgBox:
      GNDET_CHECK(n >= 8 && n % 4 == 0, "checkpoint key '", key, "': box deltas with ", n, " rows (expected 4 per class)");
      rows.resize(n - 4);
      std::iota(rows.begin(), rows.end(), 4);
      break;
    case Fix::DropBgRow:
      if (n == 1) return t;  // class-agnostic mask
      rows.resize(n - 1);
      std::iota(rows.begin(), rows.end(), 1);
      break;
    default: return t;
  }
  return take_rows(t.contiguous(), rows);
}

bool starts_with(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

MappedWeights map_by_rules(const NamedTensors& tensors, const std::vector<Rule>& rules) {
  static thread_local std::map<const std::vector<Rule>*, std::vector<CompiledRule>> cache;
  auto [it, fresh] = cache.try_emplace(&rules);
  if (fresh) it->second = compile(rules);
  MappedWeights out;
  for (const auto& [key, t] : tensors) {
    bool matched = false;
    for (const CompiledRule& c : it->second) {
      std::smatch m;
      if (!std::regex_match(key, m, c.re)) continue;
      matched = true;
      if (c.rule->fix == Fix::Drop) {
        out.dropped.push_back(key);
      } else {
        const std::string name = expand(c.rule->to, m);
        GNDET_CHECK(!out.tensors.count(name), "checkpoint keys map twice to '", name, "' (second: '", key, "')");
        out.tensors[name] = apply_fix(c.rule->fix, t, key);
      }
      break;
    }
    if (!matched) out.unmapped.push_back(key);
  }
  return out;
}

MappedWeights map_mmdet(const NamedTensors& tensors) {
  // A backbone-only file (ImageNet weights) has none of the detector's top-level modules.
  bool whole_model = false;
  for (const auto& [k, t] : tensors) {
    const std::string key = starts_with(k, "module.") ? k.substr(7) : k;
    for (const char* top : {"backbone.", "neck.", "rpn_head.", "roi_head."}) whole_model = whole_model || starts_with(key, top);
  }
  MappedWeights out;
  for (const auto& [k, t] : tensors) {
    std::string key = starts_with(k, "module.") ? k.substr(7) : k;  // DataParallel's prefix, as mmengine strips it
    if (!whole_model) key = "backbone." + key;
    out.tensors[key] = t;
  }
  return out;
}

}  // namespace

NameSource parse_name_source(const std::string& s) {
  if (s == "auto") return NameSource::Auto;
  if (s == "mmdet") return NameSource::MMDet;
  if (s == "detectron") return NameSource::Detectron;
  if (s == "detectron2") return NameSource::Detectron2;
  GNDET_FAIL("unknown checkpoint name source '", s, "' (expected mmdet, detectron, detectron2 or auto)");
}

const char* name_source_str(NameSource s) {
  switch (s) {
    case NameSource::Auto: return "auto";
    case NameSource::MMDet: return "mmdet";
    case NameSource::Detectron: return "detectron";
    case NameSource::Detectron2: return "detectron2";
  }
  return "?";
}

NameSource detect_name_source(const NamedTensors& tensors) {
  static const std::regex caffe2(R"((conv1_w|res\d_\d+_branch\w+|fpn_inner_\w+|conv_rpn_fpn\d_w|head_conv\d_w))");
  int d2 = 0, c2 = 0;
  for (const auto& [k, t] : tensors) {
    if (starts_with(k, "backbone.bottom_up.") || starts_with(k, "proposal_generator.") || starts_with(k, "roi_heads.")) ++d2;
    if (std::regex_match(k, caffe2)) ++c2;
  }
  if (d2 > 0) return NameSource::Detectron2;
  if (c2 > 0) return NameSource::Detectron;
  return NameSource::MMDet;
}

MappedWeights map_names(const NamedTensors& tensors, NameSource source) {
  if (source == NameSource::Auto) source = detect_name_source(tensors);
  MappedWeights out;
  switch (source) {
    case NameSource::Detectron: out = map_by_rules(tensors, detectron_rules()); break;
    case NameSource::Detectron2: out = map_by_rules(tensors, detectron2_rules()); break;
    default: out = map_mmdet(tensors); break;
  }
  out.source = source;
  return out;
}

std::string mapping_summary(const MappedWeights& m) {
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::string s;
  if (!m.unmapped.empty()) s += "unmapped keys: " + join(m.unmapped);
  if (!m.dropped.empty()) s += (s.empty() ? "" : "; ") + std::string("dropped: ") + join(m.dropped);
  return s;
}

}  // namespace gndet::nn::ckpt
