// Pipeline::from_json and data_preprocessor_transforms: mmdetection pipeline configs -> transforms.
#include <algorithm>
#include <optional>

#include "data/transforms.h"

namespace gndet::data {
namespace {

using Scale = std::array<int64_t, 2>;

void check_keys(const ConfigNode& step, const std::string& type, const std::vector<std::string>& accepted) {
  for (const auto& [key, value] : step.json().items()) {
    if (key == "type" || std::find(accepted.begin(), accepted.end(), key) != accepted.end()) continue;
    std::string list;
    for (const std::string& a : accepted) list += (list.empty() ? "" : ", ") + a;
    step.fail("unknown argument '" + key + "' for " + type + " (accepted: " + (list.empty() ? "none" : list) + ")");
  }
}

bool get_bool(const ConfigNode& step, const char* key, bool fallback) {
  if (!step.has(key)) return fallback;
  const ConfigNode f = step[key];
  if (!f.json().is_boolean()) f.fail("expected true or false");
  return f.json().get<bool>();
}

// [w, h] or mmdetection 2.x's [[w, h]] (one scale; several would mean multi-scale training).
Scale parse_scale(const ConfigNode& f) {
  const Json& j = f.json();
  if (j.is_array() && !j.empty() && j[0].is_array()) {
    if (j.size() != 1) f.fail("expected one scale [long, short] (multi-scale resizing is not supported)");
    return parse_scale(f.at(0));
  }
  if (!j.is_array() || j.size() != 2)
    f.fail("expected one scale [long, short] (multi-scale resizing is not supported)");
  const Scale s = {f.at(0).as_int(), f.at(1).as_int()};
  if (s[0] <= 0 || s[1] <= 0) f.fail("expected positive sizes");
  return s;
}

std::optional<Scale> find_scale(const ConfigNode& step) {
  if (step.has("scale") && step.has("img_scale")) step.fail("give either scale or img_scale, not both");
  if (step.has("scale")) return parse_scale(step["scale"]);
  if (step.has("img_scale")) return parse_scale(step["img_scale"]);
  return std::nullopt;
}

std::array<double, 3> three_numbers(const ConfigNode& f) {
  const std::vector<double> v = f.as_double_list();
  if (v.size() != 3) f.fail("expected 3 numbers (one per channel)");
  return {v[0], v[1], v[2]};
}

void expect_value(const ConfigNode& step, const char* key, const Json& wanted, const std::string& why) {
  if (step.has(key) && step[key].json() != wanted)
    step[key].fail("only " + wanted.dump() + " is supported (" + why + ")");
}

struct Parser {
  Pipeline& pipeline;
  bool& has_load_annotations;
  bool& with_bbox;
  bool& with_mask;

  void parse_list(const ConfigNode& steps, const std::optional<Scale>& inherited_scale) {
    if (!steps.json().is_array()) steps.fail("expected a list of transforms [{\"type\": ...}, ...]");
    for (size_t i = 0; i < steps.size(); ++i) parse_step(steps.at(i), inherited_scale);
  }

  void parse_step(const ConfigNode& step, const std::optional<Scale>& inherited_scale) {
    if (!step.json().is_object()) step.fail("expected a transform {\"type\": ..., arguments}");
    const std::string type = step["type"].as_string();
    if (type == "Resize") {
      check_keys(step, type, {"scale", "img_scale", "keep_ratio", "bbox_clip_border", "interpolation", "backend"});
      std::optional<Scale> scale = find_scale(step);
      if (!scale) scale = inherited_scale;
      if (!scale) step.fail("Resize needs a scale [long, short]");
      expect_value(step, "interpolation", "bilinear", "images are resized as cv2's INTER_LINEAR");
      expect_value(step, "backend", "cv2", "the resize follows cv2's conventions");
      pipeline.append(std::make_shared<Resize>(*scale, get_bool(step, "keep_ratio", true),
                                               get_bool(step, "bbox_clip_border", true)));
    } else if (type == "RandomFlip") {
      check_keys(step, type, {"prob", "flip_ratio", "direction"});
      if (step.has("prob") == step.has("flip_ratio")) step.fail("RandomFlip needs exactly one of prob / flip_ratio");
      const ConfigNode p = step.has("prob") ? step["prob"] : step["flip_ratio"];
      const double prob = p.as_double();
      if (prob < 0 || prob > 1) p.fail("expected a probability in [0, 1]");
      if (step.has("direction")) {
        const Json& d = step["direction"].json();
        if (!(d == "horizontal" || d == Json::array({"horizontal"}))) {
          step["direction"].fail("only \"horizontal\" flips are supported");
        }
      }
      pipeline.append(std::make_shared<RandomFlip>(prob));
    } else if (type == "Normalize") {
      check_keys(step, type, {"mean", "std", "to_rgb"});
      const std::array<double, 3> stdev = three_numbers(step["std"]);
      for (double v : stdev) {
        if (v == 0) step["std"].fail("std must be nonzero");
      }
      pipeline.append(std::make_shared<Normalize>(three_numbers(step["mean"]), stdev, get_bool(step, "to_rgb", true)));
    } else if (type == "Pad") {
      check_keys(step, type, {"size_divisor", "pad_val"});
      const int64_t divisor = step["size_divisor"].as_int();
      if (divisor <= 0) step["size_divisor"].fail("expected a positive divisor");
      double pad_value = 0;
      if (step.has("pad_val")) {
        const ConfigNode v = step["pad_val"];
        pad_value = v.json().is_object() ? (v.has("img") ? v["img"].as_double() : 0.0) : v.as_double();
      }
      pipeline.append(std::make_shared<Pad>(divisor, pad_value));
    } else if (type == "LoadImageFromFile") {
      check_keys(step, type, {"to_float32", "color_type", "backend_args", "file_client_args", "imdecode_backend"});
      expect_value(step, "to_float32", false, "images stay uint8 until Normalize");
      expect_value(step, "color_type", "color", "images are decoded to 3 channels");
    } else if (type == "LoadAnnotations") {
      check_keys(step, type,
                 {"with_bbox", "with_label", "with_mask", "poly2mask", "with_seg", "box_type", "backend_args",
                  "file_client_args"});
      expect_value(step, "with_label", true, "labels come with boxes");
      expect_value(step, "poly2mask", true, "masks are bitmaps");
      expect_value(step, "with_seg", false, "semantic segmentation is not supported");
      has_load_annotations = true;
      with_bbox = get_bool(step, "with_bbox", true);
      with_mask = get_bool(step, "with_mask", false);  // mmdetection's default
    } else if (type == "DefaultFormatBundle" || type == "ImageToTensor" || type == "Collect" ||
               type == "PackDetInputs") {
      check_keys(step, type, {"keys", "meta_keys"});  // the loader packs every field and all of ImageMeta
    } else if (type == "MultiScaleFlipAug") {
      check_keys(step, type, {"scale", "img_scale", "flip", "flip_direction", "transforms"});
      expect_value(step, "flip", false, "test-time flip augmentation is not supported");
      parse_list(step["transforms"], find_scale(step));
    } else {
      step["type"].fail(
          "unknown transform type (known: LoadImageFromFile, LoadAnnotations, Resize, RandomFlip, "
          "Normalize, Pad, MultiScaleFlipAug, DefaultFormatBundle, ImageToTensor, Collect, "
          "PackDetInputs)");
    }
  }
};

}  // namespace

Pipeline Pipeline::from_json(const Json& steps, const std::string& source) {
  Pipeline p;
  Parser parser{p, p.has_load_annotations_, p.with_bbox_, p.with_mask_};
  parser.parse_list(ConfigNode(steps, source, "pipeline"), std::nullopt);
  return p;
}

std::vector<std::shared_ptr<const Transform>> data_preprocessor_transforms(const Json& cfg, const std::string& source) {
  const ConfigNode f(cfg, source, "data_preprocessor");
  if (!cfg.is_object()) f.fail("expected an object");
  check_keys(f, "DetDataPreprocessor",
             {"mean", "std", "bgr_to_rgb", "rgb_to_bgr", "pad_size_divisor", "pad_value", "pad_mask", "mask_pad_value",
              "pad_seg", "seg_pad_value", "boxtype2tensor", "non_blocking", "batch_augments"});
  expect_value(f, "rgb_to_bgr", false, "use bgr_to_rgb");
  if (f.has("batch_augments") && !f["batch_augments"].json().is_null())
    f["batch_augments"].fail("batch augments are not supported");
  std::vector<std::shared_ptr<const Transform>> steps;
  if (f.has("mean") || f.has("std")) {
    steps.push_back(std::make_shared<Normalize>(three_numbers(f["mean"]), three_numbers(f["std"]),
                                                get_bool(f, "bgr_to_rgb", false)));
  }
  const int64_t divisor = f.has("pad_size_divisor") ? f["pad_size_divisor"].as_int() : 1;
  if (divisor <= 0) f["pad_size_divisor"].fail("expected a positive divisor");
  if (divisor > 1)
    steps.push_back(std::make_shared<Pad>(divisor, f.has("pad_value") ? f["pad_value"].as_double() : 0.0));
  return steps;
}

}  // namespace gndet::data
