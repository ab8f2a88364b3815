#include "apps/predictor.h"

#include "data/loader.h"
#include "nn/checkpoint.h"
#include "tensor/grad_mode.h"

namespace gndet::app {

data::Pipeline inference_pipeline(const Json& cfg) {
  Json steps = Json::array();
  const ConfigNode pipe = ConfigNode(cfg, "")["test_dataloader"]["dataset"]["pipeline"];
  for (size_t i = 0; i < pipe.size(); ++i) {
    const ConfigNode s = pipe.at(i);
    if (!s.has("type") || s["type"].as_string() != "LoadAnnotations") steps.push_back(s.json());
  }
  data::Pipeline pipeline = data::Pipeline::from_json(steps, "test_dataloader.dataset.pipeline");
  if (cfg["model"].contains("data_preprocessor")) {
    for (auto& step : data::data_preprocessor_transforms(cfg["model"]["data_preprocessor"], "model.data_preprocessor")) {
      pipeline.append(step);
    }
  }
  return pipeline;
}

Predictor::Predictor(const Json& cfg, const std::string& checkpoint, Device device, const std::string& config_name)
    : cfg_(cfg), device_(device) {
  model_ = build_model(cfg, 0, kCPU, nullptr);
  if (!checkpoint.empty()) {
    const nn::LoadReport r = model_->load_state_dict(nn::load_state_dict_from_file(checkpoint), /*strict=*/false);
    GNDET_CHECK(r.ok(), "checkpoint '", checkpoint, "' does not match the model of '", config_name, "': ", r.str());
  }
  model_->to(device);
  model_->eval();
  pipeline_ = inference_pipeline(cfg);
  names_ = app::class_names(cfg, model_->num_classes());
  pad_size_divisor_ = loader_options(cfg, "test_dataloader", 0).pad_size_divisor;
}

ModelInputs Predictor::prepare(data::Sample sample, bool with_targets) const {
  Generator rng(0);  // the test pipeline has no random step; a fixed seed keeps it so if one is added
  pipeline_.apply(sample, rng);
  std::vector<data::Sample> one;
  one.push_back(std::move(sample));
  return to_model_inputs(data::collate(std::move(one), pad_size_divisor_), device_, with_targets);
}

static void check_image(const Tensor& image) {
  GNDET_CHECK(image.defined() && image.dim() == 3 && image.size(2) == 3 && image.dtype() == kUInt8,
              "predict: expected an (H, W, 3) uint8 RGB image, got ",
              image.defined() ? shape_str(image.shape()) + " " + dtype_name(image.dtype()) : "nothing");
  GNDET_CHECK(image.size(0) > 0 && image.size(1) > 0, "predict: the image is empty ", shape_str(image.shape()));
}

Detections Predictor::predict(const Tensor& image) const {
  check_image(image);
  autograd::NoGradGuard no_grad;
  const ModelInputs in = prepare(data::make_sample(image.cpu().contiguous(), false), false);
  return model_->predict(in.images, in.infos).at(0);
}

LossDict Predictor::loss(const Tensor& image, const Tensor& boxes, const Tensor& labels, const Tensor& masks,
                         uint64_t seed) const {
  check_image(image);
  const int64_t k = boxes.defined() ? boxes.size(0) : 0;
  GNDET_CHECK(boxes.defined() && boxes.dim() == 2 && boxes.size(1) == 4, "loss: boxes must be (K, 4) x1 y1 x2 y2, got ",
              boxes.defined() ? shape_str(boxes.shape()) : "nothing");
  GNDET_CHECK(labels.defined() && labels.dim() == 1 && labels.size(0) == k, "loss: labels must be (K) = (", k,
              "), got ", labels.defined() ? shape_str(labels.shape()) : "nothing");
  GNDET_CHECK(model_->with_mask() == masks.defined(), "loss: the model ",
              model_->with_mask() ? "has a mask head: give masks (K, H, W)" : "has no mask head: give no masks");
  data::Sample s = data::make_sample(image.cpu().contiguous(), masks.defined());
  s.gt_boxes = boxes.cpu().to(kFloat32).contiguous();
  s.gt_labels = labels.cpu().to(kInt64).contiguous();
  if (masks.defined()) {
    GNDET_CHECK(masks.dim() == 3 && masks.size(0) == k && masks.size(1) == image.size(0) && masks.size(2) == image.size(1),
                "loss: masks must be (K, H, W) = (", k, ", ", image.size(0), ", ", image.size(1), "), got ",
                shape_str(masks.shape()));
    s.gt_masks = masks.cpu().to(kUInt8).contiguous();
  }
  const ModelInputs in = prepare(std::move(s), true);
  Generator gen(seed);
  model_->train();
  struct BackToEval {
    TwoStageDetector& m;
    ~BackToEval() { m.eval(); }
  } back_to_eval{*model_};
  return model_->loss(in.images, in.targets, in.infos, gen);
}

}  // namespace gndet::app
