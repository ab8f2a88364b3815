// A tiny GN Mask R-CNN overfits two synthetic-shapes images on the CPU: every loss falls by at
// least 80%. This is the end-to-end check that targets, losses and gradients agree.
#include "data/mask.h"
#include "data/shapes.h"
#include "tensor/config.h"
#include "detection/detector.h"
#include "gndet_config.h"
#include "nn/optim.h"
#include "ops/elementwise.h"
#include "ops/join.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;

namespace {

struct TwoImages {
  Tensor images;  // (2, 3, S, S) normalised
  std::vector<ImageTargets> targets;
  std::vector<ImageInfo> infos;
};

TwoImages render(int64_t S) {
  TwoImages b;
  Tensors images;
  for (int64_t i = 0; i < 2; ++i) {
    const data::ShapesImage im = data::render_shapes_image(/*seed=*/7, /*split=*/0, i, S);
    images.push_back((im.image.to(kFloat32).permute({2, 0, 1}) - 127.5) / 64.0);
    std::vector<float> boxes;
    std::vector<int64_t> labels;
    std::vector<data::Rle> rles;
    for (const data::CocoAnnotation& a : im.annotations) {
      boxes.insert(boxes.end(), {static_cast<float>(a.bbox[0]), static_cast<float>(a.bbox[1]),
                                 static_cast<float>(a.bbox[0] + a.bbox[2]), static_cast<float>(a.bbox[1] + a.bbox[3])});
      labels.push_back(a.category_id - 1);
      rles.push_back(data::segmentation_to_rle(*a.segmentation, S, S));
    }
    const int64_t G = static_cast<int64_t>(labels.size());
    ImageTargets t;
    t.boxes = from_data<float>(boxes, {G, 4});
    t.labels = from_data<int64_t>(labels, {G});
    t.masks = data::rle_decode_stack(rles, S, S);
    b.targets.push_back(t);
    b.infos.push_back({i, S, S, S, S, S, S, 1.0, 1.0, false});
  }
  b.images = stack(images, 0).contiguous();
  return b;
}

}  // namespace

TEST_CASE("a tiny Mask R-CNN overfits two shapes images: every loss falls by at least 80%", "[detection][overfit][slow]") {
  const Json cfg = load_config(std::string(GNDET_SOURCE_DIR) + "/configs/tests/mask-rcnn_tiny_shapes.json");
  Generator gen(0), sampling(1);
  TwoStageDetector model(cfg["model"], gen);
  const TwoImages batch = render(64);
  nn::SGDOptions o;
  o.lr = 0.02;
  o.momentum = 0.9;
  o.weight_decay = 0.0;  // overfitting is the point
  nn::SGD sgd(nn::make_param_groups(model), o);

  // Warmup over 10 iterations, then 0.02, then 0.002 for the last 60 (quieter final losses).
  const int kIters = 400;
  std::map<std::string, std::vector<double>> history;
  for (int it = 0; it < kIters; ++it) {
    sgd.set_lr(it < 10 ? o.lr * (it + 1) / 10.0 : (it < kIters - 60 ? o.lr : o.lr * 0.1));
    const LossDict losses = model.loss(batch.images, batch.targets, batch.infos, sampling);
    const Tensor total = total_loss(losses);
    REQUIRE(std::isfinite(total.item<double>()));
    sgd.zero_grad();
    total.backward();
    sgd.step();
    for (const auto& [name, v] : losses) history[name].push_back(v.item<double>());
  }
  // Each loss must end (mean of the last 10 iterations) at most 20% of its highest 10-iteration
  // mean. For most losses that peak is the start. The box loss starts near zero and peaks later:
  // at first the only positive RoIs are the gt boxes themselves (regression target 0), and its
  // sum over positives, divided by all 64 sampled RoIs as in mmdetection, grows as the RPN learns
  // to propose boxes overlapping the objects; from there it falls like the others.
  auto window_mean = [](const std::vector<double>& v, size_t from) {
    double s = 0;
    for (size_t i = from; i < from + 10; ++i) s += v[i];
    return s / 10.0;
  };
  for (const auto& [name, v] : history) {
    if (name == "acc") continue;
    double peak = 0;
    for (size_t i = 0; i + 10 <= v.size(); ++i) peak = std::max(peak, window_mean(v, i));
    const double first = window_mean(v, 0), last = window_mean(v, v.size() - 10);
    INFO(name << ": first 10 iterations " << first << ", peak " << peak << ", last 10 " << last);
    CHECK(last <= 0.2 * peak);
  }
  CHECK(window_mean(history["acc"], kIters - 10) > 95.0);  // the classifier is right on nearly every RoI
}
