// The zoo models: mmdetection's state_dict names and shapes, frozen stages, WS flags, every
// config building, and one training step of a tiny Mask R-CNN.
#include <filesystem>
#include <map>
#include <regex>

#include "tensor/config.h"
#include "detection/detector.h"
#include "nn/layers.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "gndet_config.h"
#include "tests/support.h"

using namespace gndet;

namespace {
std::string config_path(const std::string& rel) { return std::string(GNDET_SOURCE_DIR) + "/configs/" + rel; }

std::map<std::string, Tensor> params_of(const std::string& rel) {
  Generator gen(0);
  TwoStageDetector det(load_config(config_path(rel))["model"], gen);
  std::map<std::string, Tensor> out;
  for (auto& [k, v] : det.named_parameters()) out[k] = v;
  return out;
}
}  // namespace

TEST_CASE("mask-rcnn_r50_fpn_gn-all_2x_coco has mmdetection's state_dict keys and shapes", "[detection][zoo]") {
  const std::map<std::string, Tensor> p = params_of("gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json");
  // Counted from ZOO.md's scheme: backbone 3 (stem) + 16 blocks x 9 + 4 shortcuts x 3 = 159;
  // FPN 8 ConvModules x 3 = 24; RPN 6; box head 4 x 3 + 6 = 18; mask head 4 x 3 + 4 = 16.
  CHECK(p.size() == 223);
  const std::vector<std::pair<std::string, Shape>> expected = {
      {"backbone.conv1.weight", {64, 3, 7, 7}},
      {"backbone.gn1.weight", {64}},
      {"backbone.gn1.bias", {64}},
      {"backbone.layer1.0.conv1.weight", {64, 64, 1, 1}},
      {"backbone.layer1.0.conv2.weight", {64, 64, 3, 3}},
      {"backbone.layer1.0.conv3.weight", {256, 64, 1, 1}},
      {"backbone.layer1.0.gn3.bias", {256}},
      {"backbone.layer1.0.downsample.0.weight", {256, 64, 1, 1}},
      {"backbone.layer1.0.downsample.1.weight", {256}},
      {"backbone.layer1.0.downsample.1.bias", {256}},
      {"backbone.layer2.0.conv2.weight", {128, 128, 3, 3}},
      {"backbone.layer3.5.conv3.weight", {1024, 256, 1, 1}},
      {"backbone.layer4.2.gn3.weight", {2048}},
      {"neck.lateral_convs.0.conv.weight", {256, 256, 1, 1}},
      {"neck.lateral_convs.3.conv.weight", {256, 2048, 1, 1}},
      {"neck.lateral_convs.3.gn.weight", {256}},
      {"neck.fpn_convs.2.conv.weight", {256, 256, 3, 3}},
      {"neck.fpn_convs.2.gn.bias", {256}},
      {"rpn_head.rpn_conv.weight", {256, 256, 3, 3}},
      {"rpn_head.rpn_conv.bias", {256}},
      {"rpn_head.rpn_cls.weight", {3, 256, 1, 1}},
      {"rpn_head.rpn_reg.weight", {12, 256, 1, 1}},
      {"roi_head.bbox_head.shared_convs.3.conv.weight", {256, 256, 3, 3}},
      {"roi_head.bbox_head.shared_convs.3.gn.weight", {256}},
      {"roi_head.bbox_head.shared_fcs.0.weight", {1024, 256 * 7 * 7}},
      {"roi_head.bbox_head.fc_cls.weight", {81, 1024}},
      {"roi_head.bbox_head.fc_reg.weight", {320, 1024}},
      {"roi_head.bbox_head.fc_reg.bias", {320}},
      {"roi_head.mask_head.convs.3.conv.weight", {256, 256, 3, 3}},
      {"roi_head.mask_head.convs.0.gn.bias", {256}},
      {"roi_head.mask_head.upsample.weight", {256, 256, 2, 2}},
      {"roi_head.mask_head.conv_logits.weight", {80, 256, 1, 1}},
      {"roi_head.mask_head.conv_logits.bias", {80}},
  };
  for (const auto& [name, shape] : expected) {
    INFO(name);
    REQUIRE(p.count(name) == 1);
    CHECK(p.at(name).shape() == shape);
  }
  // Every name follows the scheme (no stray conv biases before norms, no unknown children).
  const std::regex scheme(
      R"(backbone\.(conv1\.weight|gn1\.(weight|bias)|layer[1-4]\.\d+\.(conv[123]\.weight|gn[123]\.(weight|bias)|)"
      R"(downsample\.(0\.weight|1\.(weight|bias))))|neck\.(lateral|fpn)_convs\.[0-3]\.(conv\.weight|gn\.(weight|bias))|)"
      R"(rpn_head\.rpn_(conv|cls|reg)\.(weight|bias)|roi_head\.bbox_head\.(shared_convs\.[0-3]\.(conv\.weight|gn\.)"
      R"((weight|bias))|(shared_fcs\.0|fc_cls|fc_reg)\.(weight|bias))|roi_head\.mask_head\.(convs\.[0-3]\.(conv\.weight|)"
      R"(gn\.(weight|bias))|(upsample|conv_logits)\.(weight|bias)))");
  for (const auto& [name, t] : p) {
    INFO(name);
    CHECK(std::regex_match(name, scheme));
  }
  // frozen_stages 1: the stem and layer1 do not train, layer2 does.
  CHECK_FALSE(p.at("backbone.conv1.weight").requires_grad());
  CHECK_FALSE(p.at("backbone.layer1.2.gn3.weight").requires_grad());
  CHECK(p.at("backbone.layer2.0.conv1.weight").requires_grad());
}

TEST_CASE("ResNeXt-101 32x4d GN+WS: grouped widths and weight standardization", "[detection][zoo]") {
  Generator gen(0);
  TwoStageDetector det(load_config(config_path("gn+ws/faster-rcnn_x101-32x4d_fpn_gn-ws-all_1x_coco.json"))["model"], gen);
  std::map<std::string, Shape> shapes;
  for (auto& [k, v] : det.named_parameters()) shapes[k] = v.shape();
  // width = floor(planes * 4 / 64) * 32: 128 in layer1, 1024 in layer4; 3x3 convs see width / 32 inputs.
  CHECK(shapes.at("backbone.layer1.0.conv2.weight") == Shape{128, 4, 3, 3});
  CHECK(shapes.at("backbone.layer4.0.conv2.weight") == Shape{1024, 32, 3, 3});
  CHECK(shapes.at("backbone.layer4.0.conv3.weight") == Shape{2048, 1024, 1, 1});
  CHECK(shapes.count("backbone.layer3.22.conv1.weight") == 1);  // 23 blocks in layer3
  CHECK(shapes.count("roi_head.mask_head.upsample.weight") == 0);  // Faster R-CNN
  // WS everywhere but the RPN head and the fully connected layers.
  int ws = 0, plain = 0;
  for (auto& [name, m] : det.named_modules()) {
    if (auto* conv = dynamic_cast<nn::Conv2d*>(m)) {
      const bool expect_ws = name.rfind("rpn_head", 0) != 0;
      INFO(name);
      CHECK(conv->options().weight_standardization == expect_ws);
      (conv->options().weight_standardization ? ws : plain)++;
    }
  }
  CHECK(ws > 100);
  CHECK(plain == 3);
}

TEST_CASE("every config in the repository builds", "[detection][configs]") {
  namespace fs = std::filesystem;
  // Configs that differ only in their schedule (2x / 3x / 20-23-24e) share one model dict: each
  // distinct dict is built once, which is what keeps this test fast.
  std::vector<Json> built_models;
  int configs = 0;
  for (const auto& entry : fs::recursive_directory_iterator(config_path(""))) {
    const std::string path = entry.path().string();
    if (entry.path().extension() != ".json" || path.find("/_base_/") != std::string::npos) continue;
    INFO(path);
    const Json cfg = load_config(path);
    ++configs;
    REQUIRE(cfg.contains("model"));
    if (std::find(built_models.begin(), built_models.end(), cfg["model"]) != built_models.end()) continue;
    Generator gen(0);
    CHECK_NOTHROW(TwoStageDetector(cfg["model"], gen));
    built_models.push_back(cfg["model"]);
  }
  CHECK(configs >= 27);  // 6 gn + 12 gn+ws + 6 detectron + the 1x bases + shapes and test configs
}

TEST_CASE("config errors name the key", "[detection][configs][errors]") {
  Json cfg = load_config(config_path("tests/mask-rcnn_tiny_gn.json"));
  CHECK_THROWS_WITH(apply_config_override(cfg, "model.backbone.dpeth=50"),
                    Catch::Contains("unknown config key 'model.backbone.dpeth'") && Catch::Contains("depth"));
  CHECK_THROWS_WITH(apply_config_override(cfg, "model.backbone.depth"), Catch::Contains("expected key=value"));
  apply_config_override(cfg, "model.backbone.depth=fifty");
  Generator gen(0);
  CHECK_THROWS_WITH(TwoStageDetector(cfg["model"], gen),
                    Catch::Contains("model.backbone.depth: expected an integer, got \"fifty\""));
  apply_config_override(cfg, "model.backbone.depth=34");
  CHECK(cfg["model"]["backbone"]["depth"] == 34);
  apply_config_override(cfg, "model.neck.in_channels=[1,2,3,4]");
  CHECK_THROWS_WITH(TwoStageDetector(cfg["model"], gen), Catch::Contains("in_channels does not match"));
  CHECK_THROWS_WITH(load_config(config_path("nope.json")), Catch::Contains("not found"));
}

TEST_CASE("a tiny Mask R-CNN runs a training step and predicts", "[detection][model]") {
  Generator gen(0);
  TwoStageDetector det(load_config(config_path("tests/mask-rcnn_tiny_gn.json"))["model"], gen);
  const int64_t S = 64;
  const Tensor images = randn({2, 3, S, S}, gen);
  std::vector<ImageTargets> targets(2);
  std::vector<ImageInfo> infos(2);
  for (int i = 0; i < 2; ++i) {
    targets[i].boxes = from_data<float>({4, 4, 30, 30, 20, 10, 60, 50}, {2, 4});
    targets[i].labels = from_data<int64_t>({0, 2});
    targets[i].masks = zeros({2, S, S}, kUInt8);
    targets[i].masks.select(0, 0).narrow(0, 4, 26).narrow(1, 4, 26).fill_(1);
    targets[i].masks.select(0, 1).narrow(0, 10, 40).narrow(1, 20, 40).fill_(1);
    infos[i] = {i, S, S, S, S, S, S, 1.0, 1.0, false};
  }
  const LossDict losses = det.loss(images, targets, infos, gen);
  std::vector<std::string> names;
  for (const auto& [name, value] : losses) {
    names.push_back(name);
    INFO(name);
    CHECK(std::isfinite(value.item<float>()));
  }
  CHECK(names == std::vector<std::string>{"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "acc", "loss_mask"});
  // RPN objectness starts at chance: BCE of a zero logit is ln 2.
  CHECK(losses[0].second.item<float>() == Approx(std::log(2.0)).epsilon(0.02));
  total_loss(losses).backward();
  int with_grad = 0, trainable = 0;
  for (auto& [name, p] : det.named_parameters()) {
    if (!p.requires_grad()) continue;
    ++trainable;
    with_grad += p.grad().defined() ? 1 : 0;
  }
  CHECK(with_grad == trainable);  // every trainable parameter received a gradient
  det.eval();
  const std::vector<Detections> d = det.predict(images, infos);
  REQUIRE(d.size() == 2);
  CHECK(d[0].masks.shape() == Shape{d[0].boxes.size(0), S, S});
  CHECK(d[0].boxes.size(0) <= 100);
}

TEST_CASE("a tiny Faster R-CNN (no mask branch) trains and predicts boxes only", "[detection][model]") {
  Json cfg = load_config(config_path("tests/mask-rcnn_tiny_gn.json"));
  Json& model = cfg["model"];
  model["type"] = "FasterRCNN";
  model["roi_head"].erase("mask_head");
  model["roi_head"].erase("mask_roi_extractor");
  Generator gen(0);
  TwoStageDetector det(model, gen);
  CHECK_FALSE(det.with_mask());
  const int64_t S = 64;
  const Tensor images = randn({1, 3, S, S}, gen);
  ImageTargets t;
  t.boxes = from_data<float>({8, 8, 40, 36}, {1, 4});
  t.labels = from_data<int64_t>({1});
  const std::vector<ImageInfo> infos{{0, S, S, S, S, S, S, 1.0, 1.0, false}};
  const LossDict losses = det.loss(images, {t}, infos, gen);
  CHECK(losses.size() == 5);  // rpn cls/bbox, cls, bbox, acc: no loss_mask
  total_loss(losses).backward();
  det.eval();
  const Detections d = det.predict(images, infos).at(0);
  CHECK_FALSE(d.masks.defined());
  CHECK(d.boxes.size(1) == 4);
  // A Mask R-CNN config without a mask head is refused, and so is the reverse.
  model["type"] = "MaskRCNN";
  CHECK_THROWS_WITH(TwoStageDetector(model, gen), Catch::Contains("needs roi_head.mask_head"));
}
