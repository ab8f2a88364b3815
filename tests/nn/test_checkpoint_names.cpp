// Name maps (Detectron, detectron2, mmdetection -> gndet), the .pth writer, zoo names.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>

#include "tensor/config.h"
#include "detection/detector.h"
#include "gndet_config.h"
#include "nn/checkpoint_io/name_map.h"
#include "nn/checkpoint_io/torch_file.h"
#include "nn/checkpoint_io/torch_save.h"
#include "nn/checkpoint_io/zoo.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::nn::ckpt;
using gndet::nn::NamedTensors;

namespace {

Tensor rows_tensor(int64_t rows, int64_t cols) {  // row r holds r*100 + column
  Tensor t = empty({rows, cols}, kFloat32);
  float* p = t.data<float>();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) p[r * cols + c] = static_cast<float>(r * 100 + c);
  return t;
}

std::vector<float> column0(const Tensor& t) {
  std::vector<float> v;
  const auto all = t.contiguous().to_vector<float>();
  const int64_t cols = t.numel() / t.size(0);
  for (int64_t r = 0; r < t.size(0); ++r) v.push_back(all[r * cols]);
  return v;
}

// Detectron's blob name for a gndet key of a GN Mask R-CNN, written independently of the table in
// name_map.cpp (as string surgery, the other way round), so that the test checks the table.
std::string detectron_name(const std::string& key, const std::vector<int>& last_block) {
  std::smatch m;
  auto wb = [](const std::string& s) { return s == "bias" ? std::string("b") : std::string("w"); };
  auto sb = [](const std::string& s) { return s == "bias" ? std::string("b") : std::string("s"); };
  static const std::regex stem_conv(R"(backbone\.conv1\.weight)"), stem_gn(R"(backbone\.gn1\.(weight|bias))"),
      block_conv(R"(backbone\.layer(\d)\.(\d+)\.conv(\d)\.weight)"),
      block_gn(R"(backbone\.layer(\d)\.(\d+)\.gn(\d)\.(weight|bias))"),
      down(R"(backbone\.layer(\d)\.(\d+)\.downsample\.(\d)\.(weight|bias))"),
      neck(R"(neck\.(lateral|fpn)_convs\.(\d)\.(conv|gn)\.(weight|bias))"),
      rpn(R"(rpn_head\.rpn_(conv|cls|reg)\.(weight|bias))"),
      head_conv(R"(roi_head\.bbox_head\.shared_convs\.(\d)\.(conv|gn)\.(weight|bias))"),
      head_fc(R"(roi_head\.bbox_head\.(shared_fcs\.0|fc_cls|fc_reg)\.(weight|bias))"),
      mask_conv(R"(roi_head\.mask_head\.convs\.(\d)\.(conv|gn)\.(weight|bias))"),
      mask_rest(R"(roi_head\.mask_head\.(upsample|conv_logits)\.(weight|bias))");
  const std::string abc = "abc";
  if (std::regex_match(key, m, stem_conv)) return "conv1_w";
  if (std::regex_match(key, m, stem_gn)) return "conv1_gn_" + sb(m[1]);
  const auto res = [&](const std::ssub_match& layer, const std::ssub_match& block) {
    return "res" + std::to_string(std::stoi(layer) + 1) + "_" + block.str();
  };
  if (std::regex_match(key, m, block_conv)) return res(m[1], m[2]) + "_branch2" + abc[std::stoi(m[3]) - 1] + "_w";
  if (std::regex_match(key, m, block_gn)) {
    return res(m[1], m[2]) + "_branch2" + abc[std::stoi(m[3]) - 1] + "_gn_" + sb(m[4]);
  }
  if (std::regex_match(key, m, down)) return res(m[1], m[2]) + "_branch1" + (m[3] == "0" ? "_w" : "_gn_" + sb(m[4]));
  if (std::regex_match(key, m, neck)) {
    const int level = std::stoi(m[2]) + 2;
    const std::string stage = "res" + std::to_string(level) + "_" + std::to_string(last_block[level - 2]) + "_sum";
    std::string base = m[1] == "lateral" ? "fpn_inner_" + stage + (level == 5 ? "" : "_lateral") : "fpn_" + stage;
    return base + (m[3] == "conv" ? "_" + wb(m[4]) : "_gn_" + sb(m[4]));
  }
  if (std::regex_match(key, m, rpn)) {
    const std::string which = m[1] == "conv" ? "conv_rpn" : m[1] == "cls" ? "rpn_cls_logits" : "rpn_bbox_pred";
    return which + "_fpn2_" + wb(m[2]);
  }
  if (std::regex_match(key, m, head_conv)) {
    return "head_conv" + std::to_string(std::stoi(m[1]) + 1) + (m[2] == "conv" ? "_w" : "_gn_" + sb(m[3]));
  }
  if (std::regex_match(key, m, head_fc)) {
    const std::string which = m[1] == "fc_cls" ? "cls_score" : m[1] == "fc_reg" ? "bbox_pred" : "fc6";
    return which + "_" + wb(m[2]);
  }
  if (std::regex_match(key, m, mask_conv)) {
    return "_[mask]_fcn" + std::to_string(std::stoi(m[1]) + 1) + (m[2] == "conv" ? "_w" : "_gn_" + sb(m[3]));
  }
  if (std::regex_match(key, m, mask_rest)) return (m[1] == "upsample" ? "conv5_mask_" : "mask_fcn_logits_") + wb(m[2]);
  return "?" + key;
}

}  // namespace

TEST_CASE("checkpoint names: Detectron ImageNet GN backbone blobs", "[checkpoint_io]") {
  NamedTensors blobs = {{"conv1_w", zeros({64, 3, 7, 7})},        {"conv1_gn_s", zeros({64})},
                        {"conv1_gn_b", zeros({64})},              {"res2_0_branch2a_w", zeros({64, 64, 1, 1})},
                        {"res2_0_branch2a_gn_s", zeros({64})},    {"res2_0_branch1_w", zeros({256, 64, 1, 1})},
                        {"res2_0_branch1_gn_b", zeros({256})},    {"res4_22_branch2c_gn_s", zeros({1024})},
                        {"fc1000_w", zeros({1000, 2048})},        {"lr_schedule", zeros({1})}};
  REQUIRE(detect_name_source(blobs) == NameSource::Detectron);
  const MappedWeights m = map_names(blobs, NameSource::Auto);
  std::vector<std::string> names;
  for (const auto& [k, t] : m.tensors) names.push_back(k);
  CHECK(names == std::vector<std::string>{"backbone.conv1.weight", "backbone.gn1.bias", "backbone.gn1.weight",
                                          "backbone.layer1.0.conv1.weight", "backbone.layer1.0.downsample.0.weight",
                                          "backbone.layer1.0.downsample.1.bias", "backbone.layer1.0.gn1.weight",
                                          "backbone.layer3.22.gn3.weight"});
  CHECK(m.dropped == std::vector<std::string>{"fc1000_w"});
  CHECK(m.unmapped == std::vector<std::string>{"lr_schedule"});
  CHECK_THAT(mapping_summary(m), Catch::Contains("unmapped keys: lr_schedule") && Catch::Contains("dropped: fc1000_w"));
}

TEST_CASE("checkpoint names: Detectron's background-first classes become mmdetection's background-last",
          "[checkpoint_io]") {
  // 2 classes + background. Row r of each input holds r*100 + column, so the rows can be followed.
  NamedTensors blobs = {{"cls_score_w", rows_tensor(3, 5)},
                        {"cls_score_b", rows_tensor(3, 1).reshape({3})},
                        {"bbox_pred_w", rows_tensor(12, 5)},
                        {"mask_fcn_logits_w", rows_tensor(3, 4).reshape({3, 4, 1, 1})}};
  const MappedWeights m = map_names(blobs, NameSource::Detectron);
  CHECK(m.unmapped.empty());
  CHECK(column0(m.tensors.at("roi_head.bbox_head.fc_cls.weight")) == std::vector<float>{100, 200, 0});
  CHECK(m.tensors.at("roi_head.bbox_head.fc_cls.bias").to_vector<float>() == std::vector<float>{100, 200, 0});
  CHECK(column0(m.tensors.at("roi_head.bbox_head.fc_reg.weight")) ==
        std::vector<float>{400, 500, 600, 700, 800, 900, 1000, 1100});
  CHECK(m.tensors.at("roi_head.mask_head.conv_logits.weight").shape() == Shape{2, 4, 1, 1});
  CHECK(column0(m.tensors.at("roi_head.mask_head.conv_logits.weight")) == std::vector<float>{100, 200});
}

TEST_CASE("checkpoint names: every key of gndet's GN Mask R-CNN has its Detectron blob", "[checkpoint_io]") {
  Json cfg = load_config(std::string(GNDET_SOURCE_DIR) + "/configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json");
  // Narrower layers (same names, ResNet-50 depth) keep the test fast: names are what is checked.
  Json& mc = cfg["model"];
  mc["backbone"]["base_channels"] = 32;
  mc["backbone"]["stem_channels"] = 32;
  mc["neck"]["in_channels"] = {128, 256, 512, 1024};
  mc["neck"]["out_channels"] = 32;
  mc["rpn_head"]["in_channels"] = 32;
  mc["rpn_head"]["feat_channels"] = 32;
  for (const char* extractor : {"bbox_roi_extractor", "mask_roi_extractor"}) mc["roi_head"][extractor]["out_channels"] = 32;
  for (const char* head : {"bbox_head", "mask_head"}) {
    mc["roi_head"][head]["in_channels"] = 32;
    mc["roi_head"][head]["conv_out_channels"] = 32;
  }
  mc["roi_head"]["bbox_head"]["fc_out_channels"] = 64;
  Generator gen(0);
  TwoStageDetector model(cfg["model"], gen);
  NamedTensors blobs;
  for (const auto& [key, t] : model.state_dict()) {
    Shape shape = t.shape();
    // Detectron's class-specific outputs carry the background too.
    // (fc_cls has the background row in both, at the other end.)
    if (key.find("conv_logits") != std::string::npos) shape[0] += 1;
    if (key.find("fc_reg") != std::string::npos) shape[0] += 4;
    blobs.emplace_back(detectron_name(key, {2, 3, 5, 2}), zeros(shape));
  }
  for (const auto& [name, t] : blobs) CHECK(name.rfind('?', 0) != 0);
  const MappedWeights m = map_names(blobs, NameSource::Auto);
  CHECK(m.source == NameSource::Detectron);
  CHECK(m.unmapped.empty());
  const nn::LoadReport r = model.compare_state_dict(m.tensors);
  INFO(r.str());
  CHECK(r.ok());
}

TEST_CASE("checkpoint names: detectron2 and mmdetection", "[checkpoint_io]") {
  NamedTensors d2 = {{"backbone.bottom_up.stem.conv1.norm.weight", zeros({64})},
                     {"backbone.bottom_up.res3.2.conv3.norm.bias", zeros({512})},
                     {"backbone.bottom_up.res2.0.shortcut.weight", zeros({256, 64, 1, 1})},
                     {"backbone.fpn_lateral5.norm.weight", zeros({256})},
                     {"backbone.fpn_output2.weight", zeros({256, 256, 3, 3})},
                     {"proposal_generator.rpn_head.anchor_deltas.bias", zeros({12})},
                     {"roi_heads.box_head.conv4.norm.bias", zeros({256})},
                     {"roi_heads.box_head.fc1.weight", zeros({1024, 12544})},
                     {"roi_heads.box_predictor.cls_score.weight", zeros({81, 1024})},
                     {"roi_heads.mask_head.mask_fcn1.weight", zeros({256, 256, 3, 3})},
                     {"roi_heads.mask_head.predictor.bias", zeros({80})}};
  const MappedWeights m = map_names(d2, NameSource::Auto);
  CHECK(m.source == NameSource::Detectron2);
  CHECK(m.unmapped.empty());
  for (const char* k : {"backbone.gn1.weight", "backbone.layer2.2.gn3.bias", "backbone.layer1.0.downsample.0.weight",
                        "neck.lateral_convs.3.gn.weight", "neck.fpn_convs.0.conv.weight", "rpn_head.rpn_reg.bias",
                        "roi_head.bbox_head.shared_convs.3.gn.bias", "roi_head.bbox_head.shared_fcs.0.weight",
                        "roi_head.bbox_head.fc_cls.weight", "roi_head.mask_head.convs.0.conv.weight",
                        "roi_head.mask_head.conv_logits.bias"}) {
    CHECK(m.tensors.count(k) == 1);
  }
  CHECK(m.tensors.at("roi_head.bbox_head.fc_cls.weight").size(0) == 81);  // already background-last

  // mmdetection: identity; DataParallel's "module." goes; a backbone-only file gets "backbone."
  const MappedWeights whole = map_names({{"module.backbone.conv1.weight", zeros({1})}, {"neck.x", zeros({1})}},
                                        NameSource::Auto);
  CHECK(whole.source == NameSource::MMDet);
  CHECK(whole.tensors.count("backbone.conv1.weight") == 1);
  CHECK(whole.tensors.count("neck.x") == 1);
  const MappedWeights bb = map_names({{"conv1.weight", zeros({1})}, {"layer1.0.gn1.bias", zeros({1})}}, NameSource::MMDet);
  CHECK(bb.tensors.count("backbone.conv1.weight") == 1);
  CHECK(bb.tensors.count("backbone.layer1.0.gn1.bias") == 1);
  CHECK_THROWS_WITH(parse_name_source("caffe"), Catch::Contains("mmdet, detectron, detectron2 or auto"));
}

TEST_CASE("checkpoint_io: a written .pth reads back exactly", "[checkpoint_io]") {
  nn::StateDict state;
  state["a.weight"] = rows_tensor(3, 4);
  state["b.count"] = full({2}, 7, kInt64);
  state["c.flag"] = full({3}, 1, kBool);
  state["d.scalar"] = full({}, 0.25, kFloat64);
  state["e.big"] = full({1}, static_cast<double>(int64_t{1} << 40), kInt64);
  const std::string bytes = torch_checkpoint_bytes(state, {{"source", "test"}});
  const ForeignWeights back = parse_checkpoint_buffer(bytes, "written.pth");
  CHECK(back.container == "pytorch zip");
  CHECK(back.layout == "mmengine");
  CHECK(back.skipped == std::vector<std::string>{"meta"});
  REQUIRE(back.tensors.size() == state.size());
  for (const auto& [name, t] : back.tensors) {
    INFO(name);
    REQUIRE(state.count(name));
    CHECK(t.dtype() == state[name].dtype());
    CHECK(t.shape() == state[name].shape());
    CHECK(test::max_abs_diff(t, state[name]) == 0.0);
  }
}

TEST_CASE("checkpoint_io: torch.load and mmengine read gndet's .pth (optional: reference venv)", "[checkpoint_io]") {
  const char* env = std::getenv("GNDET_REF_PYTHON");
  const std::string python = env != nullptr ? env : "/tmp/refenv/bin/python";
  if (!std::filesystem::exists(python) ||
      std::system((python + " -c 'import torch, mmengine' > /dev/null 2>&1").c_str()) != 0) {
    test::skip("no Python with torch and mmengine at " + python + " (set GNDET_REF_PYTHON; see tools/reference/)");
    return;
  }
  test::TempDir dir("pth_out");
  nn::StateDict state;
  state["backbone.conv1.weight"] = rows_tensor(2, 3).reshape({2, 3, 1, 1});
  state["roi_head.count"] = full({2}, -5, kInt64);
  state["mask"] = full({2}, 1, kBool);
  const std::string pth = dir.str() + "/out.pth";
  save_torch_checkpoint(pth, state, {{"source", "test"}});
  const std::string script = dir.str() + "/check.py";
  std::ofstream(script) << "import sys, torch\n"
                           "from mmengine.runner.checkpoint import _load_checkpoint\n"
                           "c = torch.load(sys.argv[1], weights_only=True)\n"
                           "sd = c['state_dict']\n"
                           "assert type(sd).__name__ == 'OrderedDict', type(sd)\n"
                           "assert c['meta']['source'] == 'test'\n"
                           "w = sd['backbone.conv1.weight']\n"
                           "assert w.shape == (2, 3, 1, 1) and w.dtype == torch.float32 and w[1, 2, 0, 0] == 102\n"
                           "assert sd['roi_head.count'].tolist() == [-5, -5] and sd['mask'].dtype == torch.bool\n"
                           "m = _load_checkpoint(sys.argv[1], map_location='cpu')\n"
                           "assert set(m['state_dict']) == set(sd)\n"
                           "print('torch.load ok')\n";
  std::FILE* pipe = ::popen((python + " " + script + " " + pth + " 2>&1").c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buf[512];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = ::pclose(pipe);
  INFO(out);
  CHECK(status == 0);
  CHECK_THAT(out, Catch::Contains("torch.load ok"));
}

TEST_CASE("checkpoint_io: zoo names resolve in the model folders or say where to put the file", "[checkpoint_io]") {
  test::TempDir dir("zoo_home");
  ::setenv("GNDET_HOME", dir.str().c_str(), 1);
  const std::string missing = [] {
    try {
      resolve_zoo_checkpoint("open-mmlab://detectron/resnet50_gn");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("<no error>");
  }();
  CHECK_THAT(missing, Catch::Contains("resnet50_gn-9186a21c.pth") &&
                          Catch::Contains("https://download.openmmlab.com/pretrain/third_party/resnet50_gn-9186a21c.pth") &&
                          Catch::Contains(dir.str()));
  std::ofstream(dir.str() + "/resnet50_gn_ws-15beedd8.pth") << "x";
  CHECK(resolve_zoo_checkpoint("open-mmlab://jhu/resnet50_gn_ws") == dir.str() + "/resnet50_gn_ws-15beedd8.pth");
  CHECK_THROWS_WITH(resolve_zoo_checkpoint("open-mmlab://nope/x"), Catch::Contains("unknown zoo checkpoint"));
  CHECK(resolve_zoo_checkpoint("openmmlab://jhu/resnet50_gn_ws") == dir.str() + "/resnet50_gn_ws-15beedd8.pth");
  std::filesystem::create_directories(dir.path / "detectron");
  std::ofstream(dir.str() + "/detectron/R-50-GN.pkl") << "x";
  CHECK(resolve_checkpoint_path("detectron/R-50-GN.pkl") == dir.str() + "/detectron/R-50-GN.pkl");
  CHECK(zoo_entries().size() == 8);
  ::unsetenv("GNDET_HOME");
}
