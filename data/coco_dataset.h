// A COCO instances file plus its image folder and pipeline, as a Dataset (mmdetection's
// CocoDataset): training datasets keep the images select_train_images() keeps; samples carry the
// ground truth of parse_ann_info() with masks rasterised at the image size.
#pragma once

#include <memory>
#include <string>

#include "data/coco.h"
#include "data/loader.h"

namespace gndet::data {

struct CocoDatasetConfig {
  std::string ann_file;    // the instances JSON
  std::string img_prefix;  // folder that the images' file_name values are relative to
  Json pipeline = Json::array();
  // Test mode keeps every image and loads annotations only if the pipeline has LoadAnnotations;
  // otherwise images are filtered (filter_empty_gt, min_size) and boxes always loaded.
  bool test_mode = false;
  bool filter_empty_gt = true;
  int64_t min_size = 32;
  std::string source = "dataset config";  // names the config in errors
};

class CocoDataset : public Dataset {
 public:
  explicit CocoDataset(CocoDatasetConfig config);
  // From an mmdetection dataset dict: {"type": "CocoDataset", "data_root", "ann_file",
  // "data_prefix": {"img": ...} (or 2.x "img_prefix"), "filter_cfg": {"filter_empty_gt", "min_size"},
  // "test_mode", "pipeline"}. Relative paths are joined to data_root as mmdetection does.
  // "metainfo": {"classes": [...]} (or 2.x "classes") must name the file's categories in label
  // order: selecting a subset of classes is not supported.
  static std::shared_ptr<CocoDataset> from_config(const Json& cfg, const std::string& source);
  // What from_config checks before reading any file: the keys, the type, the pipeline's steps.
  static void check_config(const Json& cfg, const std::string& source);

  using Dataset::get;
  int64_t size() const override { return static_cast<int64_t>(images_.size()); }
  // Decodes the image (checking its size against the annotation file), builds the targets and
  // runs the pipeline. Errors name the image file.
  Sample get(int64_t index, Generator& rng) const override;
  ImageSize image_size(int64_t index) const override;

  const CocoInstances& coco() const { return *coco_; }
  // Index into coco().images() of sample `index`.
  int64_t image_index(int64_t index) const { return images_[static_cast<size_t>(index)]; }
  const Pipeline& pipeline() const { return pipeline_; }
  // Adds a step at the end of the pipeline (e.g. data_preprocessor_transforms()); only while no
  // loader is reading the dataset.
  void append_transform(std::shared_ptr<const Transform> step) { pipeline_.append(std::move(step)); }
  bool loads_boxes() const { return with_bbox_; }
  bool loads_masks() const { return with_mask_; }

 private:
  CocoDatasetConfig config_;
  std::shared_ptr<const CocoInstances> coco_;
  Pipeline pipeline_;
  std::vector<int64_t> images_;
  bool with_bbox_ = true, with_mask_ = true;
};

}  // namespace gndet::data
