// The training / test pipeline between a decoded image and the model, as mmdetection's pipeline
// configs describe it:
//
//   [{"type": "LoadImageFromFile"}, {"type": "LoadAnnotations", "with_bbox": true, "with_mask": true},
//    {"type": "Resize", "scale": [1333, 800], "keep_ratio": true}, {"type": "RandomFlip", "prob": 0.5},
//    {"type": "Normalize", "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "to_rgb": true},
//    {"type": "Pad", "size_divisor": 32}, {"type": "PackDetInputs"}]
//
// Both mmdetection 2.x and 3.x spellings are read (img_scale / scale, flip_ratio / prob; the 3.x
// data_preprocessor's normalisation and padding via data_preprocessor_transforms()). Loading and
// packing steps (LoadImageFromFile, LoadAnnotations, DefaultFormatBundle, Collect, ImageToTensor,
// PackDetInputs) are markers: the dataset loads and the loader packs; LoadAnnotations' with_bbox /
// with_mask tell the dataset what to load. MultiScaleFlipAug with one scale and flip = false is
// unrolled into its transforms.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "tensor/config.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace gndet::data {

// What the pipeline did to an image, so that predictions map back to the original.
struct ImageMeta {
  int64_t image_id = -1;
  std::string filename;
  std::array<int64_t, 2> ori_shape{};  // (h, w) as decoded
  std::array<int64_t, 2> img_shape{};  // (h, w) after resizing, before padding
  std::array<int64_t, 2> pad_shape{};  // (h, w) after padding
  // (w, h): img_shape / ori_shape per axis. A box in the original image is box * scale_factor
  // (boxes were multiplied by the float32 rounding of these, as mmdetection does).
  std::array<double, 2> scale_factor{1.0, 1.0};
  bool flip = false;  // horizontal flip, applied after resizing
};

struct Sample {
  Tensor image;            // (H, W, 3): uint8 RGB as decoded; float32 after Normalize (BGR when to_rgb = false)
  Tensor gt_boxes;         // (K, 4) float32 x1, y1, x2, y2
  Tensor gt_labels;        // (K) int64, contiguous labels 0..C-1
  Tensor gt_masks;         // (K, H, W) uint8 0/1 at the current image size; undefined when masks are not loaded
  Tensor gt_boxes_ignore;  // (M, 4) float32 x1, y1, x2, y2 (crowd regions)
  ImageMeta meta;
};

// A sample whose annotation tensors are empty: (0, 4), (0), (0, H, W) when with_masks, (0, 4).
Sample make_sample(Tensor image, bool with_masks);

class Transform {
 public:
  virtual ~Transform() = default;
  // `rng` drives random choices; transforms without any ignore it.
  virtual void apply(Sample& sample, Generator& rng) const = 0;
  virtual std::string name() const = 0;
};

// Keep-ratio resize as mmcv's imrescale: s = min(long / max(h, w), short / min(h, w)), new size
// (int(w * s + 0.5), int(h * s + 0.5)). Without keep_ratio the image becomes exactly
// scale = (w, h). The image is resized as cv2.resize INTER_LINEAR does (half-pixel centres:
// source x = (x' + 0.5) * W / W' - 0.5, borders replicated, 11-bit fixed-point weights and
// OpenCV's rounding: 99.8% of pixels identical to OpenCV 5.0, the rest within 1), boxes are
// scaled by the actual per-axis factors and clipped to the image, masks are resized by nearest
// neighbour exactly as cv2's INTER_NEAREST.
class Resize : public Transform {
 public:
  Resize(std::array<int64_t, 2> scale, bool keep_ratio = true, bool clip_boxes = true);
  void apply(Sample& sample, Generator& rng) const override;
  std::string name() const override { return "Resize"; }
  // The (h, w) that an (h, w) image is resized to.
  std::array<int64_t, 2> output_size(int64_t height, int64_t width) const;

 private:
  std::array<int64_t, 2> scale_;
  bool keep_ratio_, clip_boxes_;
};

// Horizontal flip with probability `prob` (one rng.uniform() draw per sample): image, masks, and
// boxes x1' = W - x2, x2' = W - x1.
class RandomFlip : public Transform {
 public:
  explicit RandomFlip(double prob);
  void apply(Sample& sample, Generator& rng) const override;
  std::string name() const override { return "RandomFlip"; }

 private:
  double prob_;
};

// uint8 RGB image -> float32 (x - mean) / std, per channel. to_rgb has mmdetection's meaning
// for its BGR-decoded images: true = the network sees RGB; false = it sees BGR (Detectron /
// caffe-style weights), so the channels of our RGB images are reversed first and mean / std
// are given in BGR order.
class Normalize : public Transform {
 public:
  Normalize(std::array<double, 3> mean, std::array<double, 3> std, bool to_rgb);
  void apply(Sample& sample, Generator& rng) const override;
  std::string name() const override { return "Normalize"; }

 private:
  std::array<double, 3> mean_, std_;
  bool to_rgb_;
};

// Pads bottom and right to multiples of size_divisor: the image with pad_value, masks with 0.
class Pad : public Transform {
 public:
  explicit Pad(int64_t size_divisor, double pad_value = 0);
  void apply(Sample& sample, Generator& rng) const override;
  std::string name() const override { return "Pad"; }

 private:
  int64_t divisor_;
  double pad_value_;
};

class Pipeline {
 public:
  Pipeline() = default;
  // steps: a JSON array of {"type": ..., args}. Throws gndet::Error naming `source`, the step
  // ("pipeline[3]") and the problem for unknown types, unknown or malformed arguments.
  static Pipeline from_json(const Json& steps, const std::string& source = "pipeline");

  void append(std::shared_ptr<const Transform> step) { steps_.push_back(std::move(step)); }
  void apply(Sample& sample, Generator& rng) const;
  const std::vector<std::shared_ptr<const Transform>>& steps() const { return steps_; }

  // From a LoadAnnotations step, when there is one.
  bool has_load_annotations() const { return has_load_annotations_; }
  bool with_bbox() const { return with_bbox_; }
  bool with_mask() const { return with_mask_; }

 private:
  std::vector<std::shared_ptr<const Transform>> steps_;
  bool has_load_annotations_ = false, with_bbox_ = true, with_mask_ = false;
};

// mmdetection 3.x moves Normalize and Pad into model.data_preprocessor
// ({"mean", "std", "bgr_to_rgb", "pad_size_divisor", "pad_value"}): the equivalent steps.
std::vector<std::shared_ptr<const Transform>> data_preprocessor_transforms(const Json& cfg, const std::string& source);

}  // namespace gndet::data
