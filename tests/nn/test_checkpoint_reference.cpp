// Optional cross-check against the real mmdetection 3.3.0: checkpoints saved by torch.save from
// mmdetection's own GN / GN+WS models (seeded random weights), read here natively, and
// mmdetection's recorded detections on one image. The folder comes from
// tools/reference/mmdet_reference/make_fixture.py; without GNDET_REF_DIR the test is skipped.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include "tensor/grad_mode.h"
#include "tensor/config.h"
#include "detection/detector.h"
#include "gndet_config.h"
#include "nn/checkpoint.h"
#include "nn/checkpoint_io/name_map.h"
#include "nn/checkpoint_io/torch_file.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

using namespace gndet;

namespace {

struct RefModel {
  const char* prefix;
  const char* config;
};
constexpr RefModel kModels[] = {
    {"mask_rcnn_r50_gn_random", "gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json"},
    {"faster_rcnn_r50_gnws_random", "gn+ws/faster-rcnn_r50_fpn_gn-ws-all_1x_coco.json"},
    {"mask_rcnn_r50_gnws_random", "gn+ws/mask-rcnn_r50_fpn_gn-ws-all_2x_coco.json"},
    {"mask_rcnn_x50_gnws_random", "gn+ws/mask-rcnn_x50-32x4d_fpn_gn-ws-all_2x_coco.json"},
};

std::string ref_dir() {
  const char* d = std::getenv("GNDET_REF_DIR");
  return d == nullptr ? std::string() : std::string(d);
}

// GNDET_REF_DIR when it holds `file` (or is a folder), else "" after skipping the test case.
std::string ref_dir_or_skip(const std::string& file = "") {
  const std::string d = ref_dir();
  if (d.empty() || !std::filesystem::exists(d + "/" + file)) {
    test::skip("GNDET_REF_DIR is not set to a folder made by tools/reference/mmdet_reference/make_fixture.py");
    return "";
  }
  return d;
}

bool have(const std::string& dir, const RefModel& m) {
  return std::filesystem::exists(dir + "/" + m.prefix + ".pth") && std::filesystem::exists(dir + "/" + m.prefix + "_input.npy");
}

// A .npy file (version 1 or 2, little-endian f4 / i8 / u1, C order).
Tensor read_npy(const std::string& path) {
  const std::string b = nn::ckpt::read_whole_file(path);
  GNDET_CHECK(b.size() > 10 && b.compare(0, 6, "\x93NUMPY") == 0, path, ": not a .npy file");
  const int major = b[6];
  size_t hlen, start;
  if (major == 1) {
    hlen = static_cast<uint8_t>(b[8]) | static_cast<uint8_t>(b[9]) << 8;
    start = 10;
  } else {
    hlen = 0;
    for (int k = 0; k < 4; ++k) hlen |= static_cast<size_t>(static_cast<uint8_t>(b[8 + k])) << (8 * k);
    start = 12;
  }
  const std::string h = b.substr(start, hlen);
  GNDET_CHECK(h.find("'fortran_order': False") != std::string::npos, path, ": Fortran order");
  DType dt = h.find("'<f4'") != std::string::npos   ? kFloat32
             : h.find("'<i8'") != std::string::npos ? kInt64
             : h.find("'|u1'") != std::string::npos ? kUInt8
                                                    : (GNDET_FAIL(path, ": dtype in ", h), kFloat32);
  Shape shape;
  const size_t open = h.find('(', h.find("'shape'")), close = h.find(')', open);
  std::string dims = h.substr(open + 1, close - open - 1);
  for (size_t at = 0; at < dims.size();) {
    const size_t comma = dims.find(',', at);
    const std::string tok = dims.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (tok.find_first_of("0123456789") != std::string::npos) shape.push_back(std::stoll(tok));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  Tensor t = empty(shape, dt);
  const size_t n = static_cast<size_t>(t.numel()) * t.element_size();
  GNDET_CHECK(b.size() - start - hlen == n, path, ": size");
  std::memcpy(t.raw_data(), b.data() + start + hlen, n);
  return t;
}

double box_iou(const float* a, const float* b) {
  const double iw = std::max(0.0, std::min<double>(a[2], b[2]) - std::max<double>(a[0], b[0]));
  const double ih = std::max(0.0, std::min<double>(a[3], b[3]) - std::max<double>(a[1], b[1]));
  const double inter = iw * ih;
  const double ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return ua > 0 ? inter / ua : 0.0;
}

// The fixture image of make_fixture.py: 480x640 resized to 800x1067 (keep ratio), padded to 800x1088.
ImageInfo fixture_image_info() {
  ImageInfo info;
  info.image_id = 0;
  info.height = 800, info.width = 1067, info.pad_height = 800, info.pad_width = 1088;
  info.ori_height = 480, info.ori_width = 640;
  info.scale_w = 1067.0 / 640.0, info.scale_h = 800.0 / 480.0;
  return info;
}

// gndet's detections against mmdetection's (files P_det_{bboxes,scores,labels,masks}.npy), as
// matched sets: each mmdetection detection to the gndet one of its class with the highest IoU.
// Prints the figures and checks the bounds (reasons below).
void check_same_detections(const Detections& d, const std::string& p, const std::string& what) {
  const Tensor ref_boxes = read_npy(p + "det_bboxes.npy"), ref_scores = read_npy(p + "det_scores.npy"),
               ref_labels = read_npy(p + "det_labels.npy");
  const auto gb = d.boxes.contiguous().to_vector<float>(), rb = ref_boxes.to_vector<float>();
  const auto gs = d.scores.to_vector<float>(), rs = ref_scores.to_vector<float>();
  const auto gl = d.labels.to_vector<int64_t>(), rl = ref_labels.to_vector<int64_t>();
  int matched = 0;
  double worst_iou = 1, worst_score = 0, worst_mask_iou = 1;
  const bool masks = std::filesystem::exists(p + "det_masks.npy");
  Tensor ref_masks = masks ? read_npy(p + "det_masks.npy") : Tensor();
  for (size_t i = 0; i < rs.size(); ++i) {
    size_t best = SIZE_MAX;
    double best_iou = 0;
    for (size_t j = 0; j < gs.size(); ++j) {
      if (gl[j] != rl[i]) continue;
      const double iou = box_iou(&rb[4 * i], &gb[4 * j]);
      if (iou > best_iou) best_iou = iou, best = j;
    }
    // IoU 0.99 on boxes of tens of pixels is a corner shift of ~0.1 px: float32 sums in another
    // order through ~100 layers; a swap at a cut-off (score ties noted in the reference README)
    // leaves a detection unmatched instead.
    if (best == SIZE_MAX || best_iou < 0.99) continue;
    ++matched;
    worst_iou = std::min(worst_iou, best_iou);
    worst_score = std::max(worst_score, std::abs(static_cast<double>(gs[best]) - rs[i]));
    if (ref_masks.defined() && d.masks.defined()) {
      const auto a = ref_masks.select(0, static_cast<int64_t>(i)).contiguous().to_vector<uint8_t>();
      const auto b = d.masks.select(0, static_cast<int64_t>(best)).contiguous().to_vector<uint8_t>();
      int64_t inter = 0, uni = 0;
      for (size_t k = 0; k < a.size(); ++k) inter += a[k] && b[k], uni += a[k] || b[k];
      if (uni > 0) worst_mask_iou = std::min(worst_mask_iou, static_cast<double>(inter) / uni);
    }
  }
  std::printf("reference %s: %zu mmdet / %zu gndet detections, %d matched; worst box IoU %.5f, worst score diff "
              "%.2e, worst mask IoU %.4f\n",
              what.c_str(), rs.size(), gs.size(), matched, worst_iou, worst_score, worst_mask_iou);
  CHECK(rs.size() > 0);  // a comparison of two empty sets would prove nothing
  // At least 95% matched: the few swaps at the 100-detection cut and score threshold.
  CHECK(matched >= static_cast<int>(0.95 * static_cast<double>(rs.size())));
  CHECK(worst_score < 1e-3);  // scores are softmax outputs; 1e-3 covers float32 drift
  CHECK(worst_mask_iou > 0.95);  // binarised at 0.5: pixels near the threshold may flip
  CHECK(masks == d.masks.defined());
}

// The zoo config's model with the mmdetection .pth's weights (strict), in eval mode.
std::unique_ptr<TwoStageDetector> load_reference_model(const std::string& dir, const RefModel& m) {
  Generator gen(0);
  auto model = std::make_unique<TwoStageDetector>(load_config(std::string(GNDET_SOURCE_DIR) + "/configs/" + m.config)["model"], gen);
  model->load_state_dict(nn::load_state_dict_from_file(dir + "/" + m.prefix + ".pth"), /*strict=*/true);
  model->eval();
  return model;
}

}  // namespace

TEST_CASE("reference: a .pth loaded natively gives mmdetection's detections", "[checkpoint_io][reference]") {
  const std::string dir = ref_dir_or_skip();
  if (dir.empty()) return;
  autograd::NoGradGuard no_grad;
  for (const RefModel& m : kModels) {
    if (!have(dir, m)) continue;
    INFO(m.prefix);
    const std::string p = dir + "/" + m.prefix;
    const auto owned = load_reference_model(dir, m);
    TwoStageDetector& model = *owned;
    const Detections d = model.predict(read_npy(p + "_input.npy"), {fixture_image_info()}).at(0);
    check_same_detections(d, p + "_", m.prefix);
  }
}

TEST_CASE("reference: a gndet checkpoint exported with gndet convert gives the same detections in mmdetection",
          "[checkpoint_io][reference]") {
  const std::string dir = ref_dir_or_skip("image.png");
  if (dir.empty()) return;
  const char* env = std::getenv("GNDET_REF_PYTHON");
  const std::string python = env != nullptr ? env : "/tmp/refenv/bin/python";
  if (!std::filesystem::exists(python) || std::system((python + " -c 'import mmdet' > /dev/null 2>&1").c_str()) != 0) {
    test::skip("no Python with mmdetection at " + python + " (set GNDET_REF_PYTHON; see tools/reference/)");
    return;
  }
  autograd::NoGradGuard no_grad;
  for (const RefModel& m : kModels) {
    if (!have(dir, m)) continue;
    INFO(m.prefix);
    const auto owned = load_reference_model(dir, m);
    TwoStageDetector& model = *owned;
    // Make the weights gndet's own, not the file's: every float parameter times (1 + 0.01 N(0,1)),
    // seeded. Relative noise keeps each layer's scale, so the detections stay non-degenerate.
    Generator noise(7);
    for (auto& [name, w] : model.named_parameters()) {
      if (w.dtype() != kFloat32) continue;
      const Tensor n = randn(w.shape(), noise);
      float* pw = w.data<float>();
      const float* pn = n.data<float>();
      for (int64_t i = 0; i < w.numel(); ++i) pw[i] *= 1.0f + 0.01f * pn[i];
    }
    test::TempDir tmp(std::string("export_") + m.prefix);
    // The checkpoint gndet train writes, then the command a user runs to take it to mmdetection.
    nn::save_checkpoint(tmp.str() + "/gndet.safetensors", model, nullptr, nn::TrainingState{});
    const test::Run convert = test::run_gndet("convert " + tmp.str() + "/gndet.safetensors " + tmp.str() + "/out.pth");
    INFO(convert.output);
    REQUIRE(convert.exit_code == 0);
    std::string mmdet_config = m.config;
    mmdet_config.replace(mmdet_config.size() - 5, 5, ".py");  // gndet's configs mirror mmdetection's paths
    const test::Run mmdet = test::run_shell(python + " " + GNDET_SOURCE_DIR +
                                            "/tools/reference/mmdet_reference/run_exported.py --config " + mmdet_config +
                                            " --checkpoint " + tmp.str() + "/out.pth --image " + dir +
                                            "/image.png --out " + tmp.str() + "/mmdet");
    INFO(mmdet.output);
    REQUIRE(mmdet.exit_code == 0);
    std::printf("%s", mmdet.output.substr(mmdet.output.rfind("mmdetection:")).c_str());
    // The same weights in gndet, on mmdetection's preprocessing of the same image.
    const Detections d = model.predict(read_npy(tmp.str() + "/mmdet/input.npy"), {fixture_image_info()}).at(0);
    check_same_detections(d, tmp.str() + "/mmdet/", std::string(m.prefix) + " exported");
  }
}

TEST_CASE("reference: one training step from a .pth gives mmdetection's losses", "[checkpoint_io][reference]") {
  const std::string dir = ref_dir_or_skip();
  if (dir.empty()) return;
  int checked = 0;
  for (const RefModel& m : kModels) {
    const std::string p = dir + "/" + m.prefix;
    if (!have(dir, m) || !std::filesystem::exists(p + "_train_input.npy")) continue;  // made without --skip-train
    INFO(m.prefix);
    const Json summary = Json::parse(nn::ckpt::read_whole_file(p + "_summary.json"));
    const Json& ref = summary.at("train").at("deterministic").at("losses");
    // make_fixture.py's deterministic setup: samplers asked for more than there are candidates take
    // every one of them, so no random draw is involved on either side.
    Json cfg = load_config(std::string(GNDET_SOURCE_DIR) + "/configs/" + m.config)["model"];
    cfg["train_cfg"]["rpn"]["sampler"]["num"] = 10000000;
    cfg["train_cfg"]["rcnn"]["sampler"]["num"] = 10000000;
    Generator gen(0);
    TwoStageDetector model(cfg, gen);
    model.load_state_dict(nn::load_state_dict_from_file(p + ".pth"), /*strict=*/true);
    model.train();
    const ImageInfo info = fixture_image_info();
    ImageTargets t;
    t.boxes = read_npy(p + "_train_gt_bboxes.npy");
    t.labels = read_npy(p + "_train_gt_labels.npy");
    // mmdetection's bitmaps cover the resized image (800x1067); gndet's cover the padded input.
    const Tensor masks = read_npy(p + "_train_gt_masks.npy");
    REQUIRE(masks.dim() == 3);
    t.masks = zeros({masks.size(0), info.pad_height, info.pad_width}, kUInt8);
    for (int64_t g = 0; g < masks.size(0); ++g)
      for (int64_t y = 0; y < masks.size(1); ++y)
        std::memcpy(t.masks.data<uint8_t>() + (g * info.pad_height + y) * info.pad_width,
                    masks.data<uint8_t>() + (g * masks.size(1) + y) * masks.size(2), static_cast<size_t>(masks.size(2)));
    Generator step_gen(0);
    const LossDict losses = model.loss(read_npy(p + "_train_input.npy"), {t}, {info}, step_gen);
    for (const auto& [name, value] : losses) {
      INFO(name);
      REQUIRE(ref.contains(name));
      // mmdetection's RPN losses are one value per FPN level; their sum is the logged loss.
      double expected = 0;
      if (ref[name].is_array())
        for (const Json& v : ref[name]) expected += v.get<double>();
      else
        expected = ref[name].get<double>();
      const double got = value.item<float>();
      std::printf("reference %s %s: gndet %.6f mmdetection %.6f (rel. diff %.1e)\n", m.prefix, name.c_str(), got,
                  expected, std::abs(got - expected) / std::max(std::abs(expected), 1e-12));
      // float32 forward through ~100 layers summed in another order: 1e-4 relative (the losses are
      // means over thousands of anchors and RoIs; a different assignment would move them by far more).
      CHECK(std::abs(got - expected) <= 1e-4 * std::abs(expected) + 1e-6);
    }
    CHECK(losses.size() == ref.size());
    ++checked;
  }
  if (checked == 0) test::skip("no training reference in " + dir + " (made with make_fixture.py --skip-train)");
}

TEST_CASE("reference: a Detectron-style R-101-GN.pkl converts to exactly the backbone mmdetection holds",
          "[checkpoint_io][reference]") {
  const std::string dir = ref_dir();
  if (dir.empty() || !std::filesystem::exists(dir + "/R-101-GN.pkl")) {
    test::skip("no R-101-GN.pkl in GNDET_REF_DIR (made by tools/reference/make_detectron_r101_gn.py)");
    return;
  }
  // The Caffe2 blobs, renamed by nn/checkpoint_io/name_map.cpp's Detectron table (auto-detected);
  // *_momentum and the ImageNet classifier are dropped by it.
  const nn::StateDict sd = nn::load_state_dict_from_file(dir + "/R-101-GN.pkl");
  const SafetensorsFile mm = load_safetensors(dir + "/r101_gn_backbone.safetensors");
  CHECK(sd.size() == mm.tensors.size());
  for (const auto& [k, t] : mm.tensors) {
    INFO(k);
    REQUIRE(sd.count(k) == 1);
    CHECK(sd.at(k).shape() == t.shape());
    CHECK(test::max_abs_diff(sd.at(k), t) == 0.0);  // the same numbers, bit for bit
  }
  // And they are the whole backbone of gndet's R-101 GN Mask R-CNN: nothing unexpected or mis-shaped,
  // missing only what is not backbone.
  Generator gen(0);
  TwoStageDetector model(load_config(std::string(GNDET_SOURCE_DIR) + "/configs/gn/mask-rcnn_r101_fpn_gn-all_2x_coco.json")["model"],
                         gen);
  const nn::LoadReport r = model.compare_state_dict(sd);
  INFO(r.str());
  CHECK(r.unexpected.empty());
  CHECK(r.mismatched.empty());
  for (const std::string& k : r.missing) CHECK(k.rfind("backbone.", 0) != 0);
  std::printf("reference R-101-GN.pkl: %zu backbone tensors equal mmdetection's; %zu non-backbone keys left to init\n",
              sd.size(), r.missing.size());
}

TEST_CASE("reference: FPN features and RPN proposals of a .pth loaded natively equal mmdetection's",
          "[checkpoint_io][reference]") {
  const std::string dir = ref_dir_or_skip();
  if (dir.empty()) return;
  autograd::NoGradGuard no_grad;
  for (const RefModel& m : kModels) {
    if (!have(dir, m)) continue;
    INFO(m.prefix);
    const std::string p = dir + "/" + m.prefix;
    const auto owned = load_reference_model(dir, m);
    TwoStageDetector& model = *owned;
    std::shared_ptr<ResNet> backbone;
    std::shared_ptr<FPN> neck;
    std::shared_ptr<RPNHead> rpn_head;
    for (const auto& [name, child] : model.named_children()) {
      if (name == "backbone") backbone = std::dynamic_pointer_cast<ResNet>(child);
      if (name == "neck") neck = std::dynamic_pointer_cast<FPN>(child);
      if (name == "rpn_head") rpn_head = std::dynamic_pointer_cast<RPNHead>(child);
    }
    REQUIRE((backbone && neck && rpn_head));
    const std::vector<Tensor> feats = neck->forward(backbone->forward(read_npy(p + "_input.npy")));
    REQUIRE(feats.size() == 5);
    for (size_t l = 0; l < feats.size(); ++l) {
      const Tensor ref = read_npy(p + "_fpn_p" + std::to_string(l + 2) + ".npy");
      REQUIRE(feats[l].shape() == ref.shape());
      const double scale = test::max_abs_diff(ref, zeros_like(ref)), diff = test::max_abs_diff(feats[l], ref);
      std::printf("reference %s P%zu: max |gndet - mmdet| = %.2e of max |mmdet| %.3g (%.1e)\n", m.prefix, l + 2, diff,
                  scale, diff / scale);
      // float32 through ~60 convolutions and GroupNorms summed in another order: 1e-3 of the
      // feature map's largest value (measured: R-50s 1.3e-6 .. 4.3e-6 with direct convolution,
      // 1.4e-6 .. 1.2e-5 with gndet's Winograd 3x3 convs; the grouped X-50 0.6e-4 .. 1.4e-4, and
      // 0.9e-4 .. 2.4e-4 before WS's statistics moved to double, see bench/float32_accuracy.cpp;
      // a wrong weight gives O(1)).
      CHECK(diff <= 1e-3 * scale);
    }
    const Proposals props = rpn_head->proposals(rpn_head->forward(feats), {fixture_image_info()}, model.test_config().rpn).at(0);
    const auto gb = props.boxes.contiguous().to_vector<float>(), rb = read_npy(p + "_proposals_bboxes.npy").to_vector<float>();
    const auto gs = props.scores.to_vector<float>(), rs = read_npy(p + "_proposals_scores.npy").to_vector<float>();
    // Matched sets, as for detections: each mmdetection proposal to the gndet one of highest IoU
    // (the order can differ at score ties; the 1000-proposal cut can swap near-equal ones).
    int matched = 0;
    double worst_score = 0;
    for (size_t i = 0; i < rs.size(); ++i) {
      size_t best = SIZE_MAX;
      double best_iou = 0;
      for (size_t j = 0; j < gs.size(); ++j) {
        const double iou = box_iou(&rb[4 * i], &gb[4 * j]);
        if (iou > best_iou) best_iou = iou, best = j;
      }
      if (best == SIZE_MAX || best_iou < 0.99) continue;
      ++matched;
      worst_score = std::max(worst_score, std::abs(static_cast<double>(gs[best]) - rs[i]));
    }
    std::printf("reference %s proposals: %zu mmdet / %zu gndet, %d matched (IoU >= 0.99), worst score diff %.2e\n",
                m.prefix, rs.size(), gs.size(), matched, worst_score);
    CHECK(rs.size() > 0);
    CHECK(gs.size() == rs.size());
    CHECK(matched >= static_cast<int>(0.95 * static_cast<double>(rs.size())));
    CHECK(worst_score < 1e-3);  // sigmoid outputs; float32 drift
  }
}
