// A detector ready for single images: what `gndet infer` and the Python package's
// gndet.Detector share, so that both give the same numbers for the same checkpoint and image.
//
//   Predictor p(load_run_config(config, {}), "model.safetensors", choose_device("auto"));
//   Detections d = p.predict(data::read_image("000001.png"));   // boxes in the image's own pixels
//
// An image goes through the config's test pipeline (without annotation loading) and the data
// preprocessor's normalisation and padding, exactly as in evaluation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "apps/experiment.h"
#include "data/transforms.h"

namespace gndet::app {

class Predictor {
 public:
  // checkpoint: a gndet checkpoint, safetensors weights, a PyTorch .pth or a Detectron .pkl; it
  // must match the config's model (a key missing or left over, a shape mismatch: gndet::Error
  // naming both files). An empty checkpoint keeps the model's initial weights (seed 0).
  Predictor(const Json& cfg, const std::string& checkpoint, Device device, const std::string& config_name = "config");

  // image: (H, W, 3) uint8 RGB. Boxes, scores, labels (0-based) and masks (uint8, H x W) of the
  // detections, in the image's own pixels, sorted by score as the model returns them.
  Detections predict(const Tensor& image) const;
  // The model's losses (with autograd, in training mode for the call) for one image and its
  // annotations in the image's own pixels: boxes (K, 4) float32 x1 y1 x2 y2, labels (K) int64
  // 0-based, masks (K, H, W) uint8 or undefined. The test pipeline's geometry (no random flip);
  // `seed` drives the samplers.
  LossDict loss(const Tensor& image, const Tensor& boxes, const Tensor& labels, const Tensor& masks,
                uint64_t seed) const;

  TwoStageDetector& model() const { return *model_; }
  const std::vector<std::string>& class_names() const { return names_; }
  Device device() const { return device_; }

 private:
  ModelInputs prepare(data::Sample sample, bool with_targets) const;

  Json cfg_;
  Device device_;
  std::shared_ptr<TwoStageDetector> model_;
  data::Pipeline pipeline_;
  std::vector<std::string> names_;
  int64_t pad_size_divisor_ = 1;
};

// The config's test pipeline without annotation loading, then the data preprocessor's steps.
data::Pipeline inference_pipeline(const Json& cfg);

}  // namespace gndet::app
