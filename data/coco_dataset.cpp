#include "data/coco_dataset.h"

#include <cstring>
#include <filesystem>

#include "tensor/factory.h"

namespace gndet::data {
namespace {

std::string join_root(const std::string& root, const std::string& path) {
  if (root.empty() || path.empty() || std::filesystem::path(path).is_absolute()) return path;
  return (std::filesystem::path(root) / path).string();
}

}  // namespace

CocoDataset::CocoDataset(CocoDatasetConfig config) : config_(std::move(config)) {
  pipeline_ = Pipeline::from_json(config_.pipeline, config_.source);  // first: a bad step fails before the file is read
  coco_ = std::make_shared<const CocoInstances>(CocoInstances::load(config_.ann_file));
  if (pipeline_.has_load_annotations()) {
    with_bbox_ = pipeline_.with_bbox();
    with_mask_ = pipeline_.with_mask();
  } else {
    with_bbox_ = with_mask_ = !config_.test_mode;
  }
  GNDET_CHECK(!with_mask_ || with_bbox_, config_.source,
              ": LoadAnnotations with with_mask but not with_bbox is not supported");
  if (config_.test_mode) {
    for (int64_t i = 0; i < static_cast<int64_t>(coco_->images().size()); ++i) images_.push_back(i);
  } else {
    images_ = select_train_images(*coco_, config_.filter_empty_gt, config_.min_size);
  }
}

void CocoDataset::check_config(const Json& cfg, const std::string& source) {
  const ConfigNode f(cfg, source, "dataset");
  if (!cfg.is_object()) f.fail("expected a dataset object");
  for (const auto& [key, value] : cfg.items()) {
    static const char* const known[] = {"type",           "data_root", "ann_file",        "data_prefix", "img_prefix",
                                        "filter_cfg",     "test_mode", "pipeline",        "metainfo",    "backend_args",
                                        "serialize_data", "lazy_init", "filter_empty_gt", "classes"};
    bool ok = false;
    for (const char* k : known) ok = ok || key == k;
    if (!ok) f[key.c_str()].fail("unknown dataset argument '" + key + "'");
  }
  if (f.has("type") && f["type"].as_string() != "CocoDataset") f["type"].fail("only CocoDataset is supported");
  (void)f["ann_file"].as_string();
  if (f.has("pipeline")) (void)Pipeline::from_json(f["pipeline"].json(), source);
}

std::shared_ptr<CocoDataset> CocoDataset::from_config(const Json& cfg, const std::string& source) {
  check_config(cfg, source);
  const ConfigNode f(cfg, source, "dataset");
  CocoDatasetConfig c;
  c.source = source;
  const std::string root = f.has("data_root") ? f["data_root"].as_string() : "";
  c.ann_file = join_root(root, f["ann_file"].as_string());
  if (f.has("data_prefix")) {
    c.img_prefix = join_root(root, f["data_prefix"]["img"].as_string());
  } else if (f.has("img_prefix")) {
    c.img_prefix = join_root(root, f["img_prefix"].as_string());
  } else {
    c.img_prefix = root;
  }
  if (f.has("test_mode")) {
    if (!f["test_mode"].json().is_boolean()) f["test_mode"].fail("expected true or false");
    c.test_mode = f["test_mode"].json().get<bool>();
  }
  if (f.has("filter_empty_gt")) c.filter_empty_gt = f["filter_empty_gt"].as_flag();  // mmdetection 2.x
  if (f.has("filter_cfg") && !f["filter_cfg"].json().is_null()) {
    const ConfigNode fc = f["filter_cfg"];
    if (fc.has("filter_empty_gt")) c.filter_empty_gt = fc["filter_empty_gt"].as_flag();
    if (fc.has("min_size")) c.min_size = fc["min_size"].as_int();
  }
  if (f.has("pipeline")) c.pipeline = f["pipeline"].json();
  auto ds = std::make_shared<CocoDataset>(std::move(c));
  for (const char* where : {"metainfo", "classes"}) {
    if (!f.has(where) || f[where].json().is_null()) continue;
    const ConfigNode classes = std::string(where) == "metainfo" ? f[where]["classes"] : f[where];
    std::vector<std::string> want, have;
    for (size_t i = 0; i < classes.size(); ++i) want.push_back(classes.at(i).as_string());
    for (int64_t l = 0; l < ds->coco().num_classes(); ++l) have.push_back(ds->coco().category_name(l));
    if (want != have) {
      std::string list;
      for (const std::string& n : have) list += (list.empty() ? "" : ", ") + n;
      classes.fail("the classes must be the annotation file's categories in id order (" + list +
                   "); selecting a subset is not supported");
    }
  }
  return ds;
}

ImageSize CocoDataset::image_size(int64_t index) const {
  const CocoImage& img = coco_->images()[static_cast<size_t>(image_index(index))];
  return {img.height, img.width};
}

Sample CocoDataset::get(int64_t index, Generator& rng) const {
  GNDET_CHECK(index >= 0 && index < size(), "CocoDataset: index ", index, " outside 0..", size() - 1);
  const int64_t im = image_index(index);
  const CocoImage& info = coco_->images()[static_cast<size_t>(im)];
  const std::string path = join_root(config_.img_prefix, info.file_name);
  Tensor image = read_image(path);
  GNDET_CHECK(image.size(0) == info.height && image.size(1) == info.width, "image '", path, "' is ", image.size(1),
              " x ", image.size(0), " (w x h) but ", coco_->source(), " says ", info.width, " x ", info.height);
  Sample s = make_sample(std::move(image), with_mask_);
  s.meta.image_id = info.id;
  s.meta.filename = path;
  if (with_bbox_) {
    const GtInstances gt = parse_ann_info(*coco_, im);
    const int64_t K = static_cast<int64_t>(gt.boxes.size()), M = static_cast<int64_t>(gt.ignore_boxes.size());
    s.gt_boxes = empty({K, 4}, kFloat32);
    if (K > 0) std::memcpy(s.gt_boxes.data<float>(), gt.boxes.data(), static_cast<size_t>(K) * 4 * sizeof(float));
    s.gt_labels = from_data<int64_t>(gt.labels, Shape{K});
    s.gt_boxes_ignore = empty({M, 4}, kFloat32);
    if (M > 0) {
      std::memcpy(s.gt_boxes_ignore.data<float>(), gt.ignore_boxes.data(), static_cast<size_t>(M) * 4 * sizeof(float));
    }
    if (with_mask_) {
      std::vector<Rle> rles;
      rles.reserve(gt.annotations.size());
      for (int64_t ai : gt.annotations) {
        const CocoAnnotation& ann = coco_->annotations()[static_cast<size_t>(ai)];
        GNDET_CHECK(ann.segmentation.has_value(), coco_->source(), ": annotation id ", ann.id, " (image '",
                    info.file_name, "') has no segmentation, but the pipeline loads masks");
        rles.push_back(segmentation_to_rle(*ann.segmentation, info.height, info.width));
        GNDET_CHECK(rles.back().height == info.height && rles.back().width == info.width, coco_->source(),
                    ": annotation id ", ann.id, ": RLE of size ", rles.back().height, " x ", rles.back().width,
                    " on a ", info.height, " x ", info.width, " image");
      }
      s.gt_masks = rle_decode_stack(rles, info.height, info.width);
    }
  }
  pipeline_.apply(s, rng);
  return s;
}

}  // namespace gndet::data
