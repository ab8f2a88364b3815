#include "data/coco.h"

#include <algorithm>
#include <cmath>

namespace gndet::data {

Segmentation parse_segmentation(const ConfigNode& field) {
  Segmentation seg;
  if (field.json().is_array()) {
    seg.kind = Segmentation::Kind::Polygons;
    const size_t n = field.size();
    seg.polygons.reserve(n);
    for (size_t i = 0; i < n; ++i) seg.polygons.push_back(field.at(i).as_double_list());
    return seg;
  }
  if (!field.json().is_object()) field.fail("expected polygons (a list of lists) or an RLE object {size, counts}");
  seg.kind = Segmentation::Kind::Rle;
  const ConfigNode size = field["size"];
  if (size.size() != 2) size.fail("expected [height, width]");
  const int64_t h = size.at(0).as_int(), w = size.at(1).as_int();
  if (h < 0 || w < 0 || h * w > int64_t{UINT32_MAX}) size.fail("expected a non-negative [height, width]");
  const ConfigNode counts = field["counts"];
  if (counts.json().is_string()) {
    seg.compressed = true;
    try {
      seg.rle = rle_from_string(counts.json().get_ref<const std::string&>(), h, w);
    } catch (const Error& e) {
      counts.fail(e.what());
    }
  } else if (counts.json().is_array()) {
    seg.compressed = false;
    seg.rle = Rle{h, w, {}};
    seg.rle.counts.reserve(counts.size());
    for (size_t i = 0; i < counts.size(); ++i) {
      const int64_t c = counts.at(i).as_int();
      if (c < 0 || c > int64_t{UINT32_MAX}) counts.at(i).fail("expected a run length in 0..2^32-1");
      seg.rle.counts.push_back(static_cast<uint32_t>(c));
    }
  } else {
    counts.fail("expected a compressed RLE string or a list of run lengths");
  }
  return seg;
}

Json segmentation_to_json(const Segmentation& seg) {
  if (seg.kind == Segmentation::Kind::Polygons) return Json(seg.polygons);
  Json out = Json::object();
  out["size"] = {seg.rle.height, seg.rle.width};
  if (seg.compressed) {
    out["counts"] = rle_to_string(seg.rle);
  } else {
    out["counts"] = seg.rle.counts;
  }
  return out;
}

Rle segmentation_to_rle(const Segmentation& seg, int64_t image_height, int64_t image_width) {
  if (seg.kind == Segmentation::Kind::Rle) return seg.rle;
  std::vector<Rle> parts;
  parts.reserve(seg.polygons.size());
  for (const auto& poly : seg.polygons) parts.push_back(rle_from_polygon(poly, image_height, image_width));
  if (parts.empty()) return rle_from_polygon({}, image_height, image_width);
  return rle_merge(parts, /*intersect=*/false);
}

CocoAnnotation parse_annotation(const ConfigNode& a) {
  CocoAnnotation ann;
  ann.id = a["id"].as_int();
  ann.image_id = a["image_id"].as_int();
  ann.category_id = a["category_id"].as_int();
  const ConfigNode bbox = a["bbox"];
  const std::vector<double> b = bbox.as_double_list();
  if (b.size() != 4) bbox.fail("expected 4 numbers [x, y, width, height]");
  for (double v : b) {
    if (!std::isfinite(v)) bbox.fail("expected finite numbers");
  }
  ann.bbox = {b[0], b[1], b[2], b[3]};
  ann.area = a["area"].as_double();
  if (a.has("iscrowd")) ann.iscrowd = a["iscrowd"].as_flag();
  if (a.has("ignore")) ann.ignore = a["ignore"].as_flag();
  if (a.has("segmentation") && !a["segmentation"].json().is_null()) {
    ann.segmentation = parse_segmentation(a["segmentation"]);
  }
  return ann;
}

// CocoInstances::load streams the file (data/coco_stream.cpp).

CocoInstances CocoInstances::parse(const Json& json, const std::string& source) {
  CocoInstances c;
  c.source_ = source;
  const ConfigNode root(json, c.source_, "");
  if (!json.is_object()) root.fail("expected an object with images, annotations and categories");

  const ConfigNode images = root["images"];
  c.images_.reserve(images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const ConfigNode im = images.at(i);
    CocoImage img;
    img.id = im["id"].as_int();
    img.file_name = im["file_name"].as_string();
    img.width = im["width"].as_int();
    img.height = im["height"].as_int();
    if (img.width <= 0 || img.height <= 0 || img.width * img.height > int64_t{UINT32_MAX}) {
      im.fail("expected a positive width and height (at most 2^32 pixels)");
    }
    if (!c.image_index_.emplace(img.id, static_cast<int64_t>(i)).second) {
      im["id"].fail("duplicate image id");
    }
    c.images_.push_back(std::move(img));
  }

  const ConfigNode cats = root["categories"];
  for (size_t i = 0; i < cats.size(); ++i) {
    const ConfigNode ct = cats.at(i);
    CocoCategory cat;
    cat.id = ct["id"].as_int();
    if (ct.has("name")) cat.name = ct["name"].as_string();
    for (const CocoCategory& other : c.categories_) {
      if (other.id == cat.id) ct["id"].fail("duplicate category id");
    }
    c.categories_.push_back(std::move(cat));
  }
  for (const CocoCategory& cat : c.categories_) c.sorted_category_ids_.push_back(cat.id);
  std::sort(c.sorted_category_ids_.begin(), c.sorted_category_ids_.end());
  for (size_t label = 0; label < c.sorted_category_ids_.size(); ++label) {
    const int64_t id = c.sorted_category_ids_[label];
    c.label_of_[id] = static_cast<int64_t>(label);
    for (const CocoCategory& cat : c.categories_) {
      if (cat.id == id) c.names_by_label_.push_back(cat.name);
    }
  }

  c.per_image_.resize(c.images_.size());
  if (root.has("annotations")) {
    const ConfigNode anns = root["annotations"];
    c.annotations_.reserve(anns.size());
    std::unordered_map<int64_t, size_t> seen_ids;
    seen_ids.reserve(anns.size());
    for (size_t i = 0; i < anns.size(); ++i) {
      const ConfigNode a = anns.at(i);
      CocoAnnotation ann = parse_annotation(a);
      const int64_t im = c.image_index(ann.image_id);
      if (im < 0) a["image_id"].fail("no image has this id");
      if (!seen_ids.emplace(ann.id, i).second) {
        a["id"].fail("duplicate annotation id (also annotations[" + std::to_string(seen_ids[ann.id]) + "])");
      }
      c.per_image_[static_cast<size_t>(im)].push_back(static_cast<int64_t>(i));
      c.annotations_.push_back(std::move(ann));
    }
  }
  return c;
}

int64_t CocoInstances::image_index(int64_t image_id) const {
  const auto it = image_index_.find(image_id);
  return it == image_index_.end() ? -1 : it->second;
}

int64_t CocoInstances::label_of(int64_t category_id) const {
  const auto it = label_of_.find(category_id);
  return it == label_of_.end() ? -1 : it->second;
}

int64_t CocoInstances::category_of(int64_t label) const {
  GNDET_CHECK(label >= 0 && label < num_classes(), source_, ": label ", label, " is outside 0..", num_classes() - 1);
  return sorted_category_ids_[static_cast<size_t>(label)];
}

const std::string& CocoInstances::category_name(int64_t label) const {
  GNDET_CHECK(label >= 0 && label < num_classes(), source_, ": label ", label, " is outside 0..", num_classes() - 1);
  return names_by_label_[static_cast<size_t>(label)];
}

GtInstances parse_ann_info(const CocoInstances& coco, int64_t image_index) {
  const CocoImage& img = coco.images()[static_cast<size_t>(image_index)];
  GtInstances gt;
  for (int64_t ai : coco.annotations_of(image_index)) {
    const CocoAnnotation& ann = coco.annotations()[static_cast<size_t>(ai)];
    if (ann.ignore) continue;
    const double x1 = ann.bbox[0], y1 = ann.bbox[1], w = ann.bbox[2], h = ann.bbox[3];
    const double inter_w = std::max(0.0, std::min(x1 + w, static_cast<double>(img.width)) - std::max(x1, 0.0));
    const double inter_h = std::max(0.0, std::min(y1 + h, static_cast<double>(img.height)) - std::max(y1, 0.0));
    if (inter_w * inter_h == 0) continue;
    if (ann.area <= 0 || w < 1 || h < 1) continue;
    const int64_t label = coco.label_of(ann.category_id);
    if (label < 0) continue;
    const std::array<float, 4> box = {static_cast<float>(x1), static_cast<float>(y1), static_cast<float>(x1 + w),
                                      static_cast<float>(y1 + h)};
    if (ann.iscrowd) {
      gt.ignore_boxes.push_back(box);
    } else {
      gt.boxes.push_back(box);
      gt.labels.push_back(label);
      gt.annotations.push_back(ai);
    }
  }
  return gt;
}

std::vector<int64_t> select_train_images(const CocoInstances& coco, bool filter_empty_gt, int64_t min_size) {
  std::vector<int64_t> keep;
  for (size_t i = 0; i < coco.images().size(); ++i) {
    const CocoImage& img = coco.images()[i];
    if (filter_empty_gt && parse_ann_info(coco, static_cast<int64_t>(i)).boxes.empty()) continue;
    if (std::min(img.width, img.height) < min_size) continue;
    keep.push_back(static_cast<int64_t>(i));
  }
  return keep;
}

}  // namespace gndet::data
