// The tiny GN Mask R-CNN (configs/tests/mask-rcnn_tiny_gn.json) on the CPU and on the GPU: built
// twice from one seed, one copy moved to CUDA, the same images, targets and sampling seed; every
// loss and every parameter gradient compared. TF32 off.
//
// Sampling is random but seeded (the sampler draws from a CPU Generator on both devices), so
// both devices sample the same anchors and RoIs exactly when they assign the same labels:
//  - the RPN's assignment depends only on anchors (computed on the host) and the ground truth,
//    through box IoUs that the GPU computes bit for bit like the CPU: its sampling is identical;
//  - the RoI head's depends on the proposals, which come from the RPN's scores: float rounding
//    in the convolutions could swap two near-equal scores and change the proposal set. So the
//    loss is composed here from the detector's parts, as TwoStageDetector::loss does, and both
//    RoI heads get the CPU's proposals. The GPU's own proposals are compared apart, leniently.
// Tolerances: features pass through ~20 convolutions and GroupNorms computed in a different
// order (cuDNN vs im2col + Eigen, float statistics vs double): relative differences of ~1e-5 in
// the losses, and up to ~1e-4 of a tensor's largest entry in its gradient (GroupNorm's backward
// subtracts nearly equal terms). 1e-3 of each gradient's largest magnitude and 1e-4 relative on
// the losses still fail on any wrong kernel, whose errors are of the order of the values.
#include <algorithm>
#include <cmath>
#include <map>

#include "tensor/config.h"
#include "detection/detector.h"
#include "gndet_config.h"
#include "ops/box_iou.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::gpu;

namespace {

struct Batch {
  Tensor images;
  std::vector<ImageTargets> targets;
  std::vector<ImageInfo> infos;

  Batch to(Device dev) const {
    Batch b{images.to(dev), targets, infos};
    for (ImageTargets& t : b.targets) {
      t.boxes = t.boxes.to(dev);
      t.labels = t.labels.to(dev);
      t.masks = t.masks.to(dev);
    }
    return b;
  }
};

// Two 64x64 images with three rectangular objects each (boxes off the pixel grid, masks filling them).
Batch make_batch() {
  const int64_t S = 64;
  Generator gen(21);
  Batch b;
  b.images = randn({2, 3, S, S}, gen);
  for (int i = 0; i < 2; ++i) {
    std::vector<float> boxes;
    ImageTargets t;
    t.masks = zeros({3, S, S}, kUInt8);
    for (int k = 0; k < 3; ++k) {
      const double x = 2 + 30 * gen.uniform(), y = 2 + 30 * gen.uniform();
      const double w = 12 + 18 * gen.uniform(), h = 12 + 18 * gen.uniform();
      boxes.insert(boxes.end(), {static_cast<float>(x), static_cast<float>(y), static_cast<float>(x + w),
                                 static_cast<float>(y + h)});
      const int64_t x0 = static_cast<int64_t>(std::ceil(x)), y0 = static_cast<int64_t>(std::ceil(y));
      const int64_t x1 = static_cast<int64_t>(x + w), y1 = static_cast<int64_t>(y + h);
      t.masks.select(0, k).narrow(0, y0, y1 - y0).narrow(1, x0, x1 - x0).fill_(1);
    }
    t.boxes = from_data<float>(boxes, {3, 4});
    t.labels = from_data<int64_t>({0, 2, 1});
    b.targets.push_back(t);
    b.infos.push_back({i, S, S, S, S, S, S, 1.0, 1.0, false});
  }
  return b;
}

// TwoStageDetector::loss in its two stages; the RoI head gets `given` proposals when not empty.
LossDict composed_loss(TwoStageDetector& det, const Batch& b, Generator& gen, const std::vector<Proposals>& given,
                       std::vector<Proposals>* own) {
  RpnStage first = det.rpn_stage(b.images, b.targets, b.infos, gen);
  *own = first.proposals;
  LossDict losses = std::move(first.losses);
  for (auto& l : det.roi_stage(first.feats, given.empty() ? *own : given, b.targets, b.infos, gen)) losses.push_back(l);
  return losses;
}

double max_abs(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  double m = 0.0;
  for (const double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEST_CASE("cuda parity: tiny GN Mask R-CNN, every loss and every parameter gradient", "[cuda][model]") {
  GNDET_REQUIRE_CUDA();
  test::NoTf32Guard fp32;
  const Json cfg = load_config(std::string(GNDET_SOURCE_DIR) + "/configs/tests/mask-rcnn_tiny_gn.json")["model"];
  Generator init_c(0), init_g(0);
  TwoStageDetector cpu_det(cfg, init_c), gpu_det(cfg, init_g);
  gpu_det.to(gpu());
  const Batch batch = make_batch();
  const Batch batch_g = batch.to(gpu());

  Generator gen_c(5), gen_g(5);
  std::vector<Proposals> props_c, props_g;
  const LossDict lc = composed_loss(cpu_det, batch, gen_c, {}, &props_c);
  std::vector<Proposals> given;
  for (const Proposals& p : props_c) given.push_back({p.boxes.to(gpu()), p.scores.to(gpu())});
  const LossDict lg = composed_loss(gpu_det, batch_g, gen_g, given, &props_g);

  REQUIRE(lc.size() == lg.size());
  for (size_t i = 0; i < lc.size(); ++i) {
    INFO(lc[i].first);
    REQUIRE(lg[i].first == lc[i].first);
    REQUIRE(lg[i].second.device() == gpu());
    const double c = lc[i].second.item<double>(), g = lg[i].second.item<double>();
    CHECK(std::isfinite(g));
    if (lc[i].first == "acc") {
      // An argmax over near-equal initial class scores may flip for a sample: 2 of >= 64 allowed.
      CHECK(std::abs(g - c) <= 2 * 100.0 / 64 + 1e-9);
    } else {
      CHECK(std::abs(g - c) <= 1e-4 * std::abs(c) + 1e-6);
    }
  }

  total_loss(lc).backward();
  total_loss(lg).backward();
  const nn::NamedTensors pc = cpu_det.named_parameters(), pg = gpu_det.named_parameters();
  REQUIRE(pc.size() == pg.size());
  int compared = 0;
  for (size_t i = 0; i < pc.size(); ++i) {
    INFO(pc[i].first);
    REQUIRE(pg[i].first == pc[i].first);
    const Tensor gc = pc[i].second.grad(), gg = pg[i].second.grad();
    REQUIRE(gc.defined() == gg.defined());
    if (!gc.defined()) continue;
    REQUIRE(gg.device() == gpu());
    const double scale = max_abs(gc);
    test::check_close(gg, gc, 1e-3 * scale + 1e-7, 1e-3, "gradient");
    ++compared;
  }
  CHECK(compared > 50);  // the tiny model has ~100 trainable tensors

  // The GPU's own proposals: the same count per image, and nearly every CPU proposal found among
  // them (a near-tie in scores may swap a few at the cut-off).
  REQUIRE(props_g.size() == props_c.size());
  for (size_t i = 0; i < props_c.size(); ++i) {
    INFO("image " << i);
    const int64_t nc = props_c[i].boxes.size(0), ng = props_g[i].boxes.size(0);
    CHECK(std::abs(ng - nc) <= std::max<int64_t>(2, nc / 50));
    if (nc == 0 || ng == 0) continue;
    const Tensor iou = box_iou(props_c[i].boxes, props_g[i].boxes.cpu());
    const std::vector<float> best = max(iou, 1).values.to_vector<float>();
    const int64_t matched = std::count_if(best.begin(), best.end(), [](float v) { return v > 0.99f; });
    CHECK(matched >= nc * 95 / 100);
  }
}

TEST_CASE("cuda: tiny GN Mask R-CNN trains a step and predicts end to end on the GPU", "[cuda][model]") {
  GNDET_REQUIRE_CUDA();
  const Json cfg = load_config(std::string(GNDET_SOURCE_DIR) + "/configs/tests/mask-rcnn_tiny_gn.json")["model"];
  Generator init(0);
  TwoStageDetector det(cfg, init);
  det.to(gpu());
  const Batch b = make_batch().to(gpu());
  Generator gen(3);
  const LossDict losses = det.loss(b.images, b.targets, b.infos, gen);
  std::vector<std::string> names;
  for (const auto& [name, value] : losses) {
    INFO(name);
    names.push_back(name);
    CHECK(std::isfinite(value.item<float>()));
  }
  CHECK(names == std::vector<std::string>{"loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "acc", "loss_mask"});
  total_loss(losses).backward();
  for (const auto& [name, p] : det.named_parameters()) {
    if (!p.requires_grad()) continue;
    INFO(name);
    CHECK(p.grad().defined());
  }
  det.eval();
  const std::vector<Detections> d = det.predict(b.images, b.infos);
  REQUIRE(d.size() == 2);
  CHECK(d[0].boxes.size(0) <= 100);
  CHECK(d[0].masks.shape() == Shape{d[0].boxes.size(0), 64, 64});
}
