#include "data/coco_results.h"

#include <cmath>

#include "tensor/json_text.h"
#include "tensor/safetensors.h"

namespace gndet::data {

namespace {

Detection parse_detection(const ConfigNode& r) {
  if (!r.json().is_object()) r.fail("expected a detection {image_id, category_id, bbox, score, segmentation}");
  Detection d;
  d.image_id = r["image_id"].as_int();
  d.category_id = r["category_id"].as_int();
  d.score = r["score"].as_double();
  if (!std::isfinite(d.score)) r["score"].fail("expected a finite score");
  if (r.has("bbox")) {
    const ConfigNode bbox = r["bbox"];
    const std::vector<double> b = bbox.as_double_list();
    if (!b.empty()) {
      if (b.size() != 4) bbox.fail("expected 4 numbers [x, y, width, height]");
      d.bbox = BoxXywh{b[0], b[1], b[2], b[3]};
    }
  }
  if (r.has("segmentation") && !r["segmentation"].json().is_null()) {
    d.segmentation = parse_segmentation(r["segmentation"]);
  }
  return d;
}

}  // namespace

std::vector<Detection> parse_detections(const Json& json, const std::string& source) {
  const ConfigNode root(json, source, "");
  if (!json.is_array()) root.fail("results must be a JSON array of detections");
  std::vector<Detection> dets;
  dets.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) dets.push_back(parse_detection(root.at(i)));
  return dets;
}

std::vector<Detection> read_detections(const std::string& path) {
  const std::string text = read_text_file(path, "COCO results file");
  check_json_depth(text, "COCO results file '" + path + "'");
  // Each detection is converted as soon as it is parsed and then dropped from the document, so
  // a 500,000-entry file never exists as one JSON tree (a fraction of the memory, and faster).
  std::vector<Detection> dets;
  auto on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 0 && (event == Json::parse_event_t::object_start || event == Json::parse_event_t::value)) {
      GNDET_FAIL(path, ": (top level): results must be a JSON array of detections");
    }
    if (depth == 1 && (event == Json::parse_event_t::object_end || event == Json::parse_event_t::value)) {
      std::string where = "[";
      where += std::to_string(dets.size());
      where += ']';
      dets.push_back(parse_detection(ConfigNode(parsed, path, where)));
      return false;
    }
    return true;
  };
  try {
    const Json rest = Json::parse(text, on_event);  // the empty array the detections were taken from
    (void)rest;
  } catch (const Json::exception& e) {  // parse_error, and out_of_range.406 for 1e400
    std::string why = e.what();  // quotes the offending token whole: bounded here
    if (why.size() > 200) why = why.substr(0, 197) + "...";
    GNDET_FAIL("COCO results file '", path, "' is not valid JSON (", why, ")");
  }
  return dets;
}

void append_detections(std::vector<Detection>& out, const CocoInstances& coco, int64_t image_id, const Tensor& boxes,
                       const Tensor& scores, const Tensor& labels, const Tensor& masks) {
  GNDET_CHECK(boxes.dim() == 2 && boxes.size(1) == 4, "append_detections: boxes must be (N, 4), got ",
              shape_str(boxes.shape()));
  const int64_t n = boxes.size(0);
  GNDET_CHECK(scores.dim() == 1 && scores.size(0) == n && labels.dim() == 1 && labels.size(0) == n,
              "append_detections: expected scores (", n, ") and labels (", n, "), got ", shape_str(scores.shape()),
              " and ", shape_str(labels.shape()));
  GNDET_CHECK(coco.image_index(image_id) >= 0, "append_detections: image id ", image_id, " is not in ", coco.source());
  const bool with_masks = masks.defined();
  if (with_masks) {
    GNDET_CHECK(masks.dim() == 3 && masks.size(0) == n, "append_detections: masks must be (", n, ", H, W), got ",
                shape_str(masks.shape()));
  }
  const std::vector<float> b = boxes.to(kFloat32).to_vector<float>(), s = scores.to(kFloat32).to_vector<float>();
  const std::vector<int64_t> l = labels.to(kInt64).to_vector<int64_t>();
  const Tensor m = with_masks ? masks.cpu().contiguous() : Tensor();
  for (int64_t i = 0; i < n; ++i) {
    Detection d;
    d.image_id = image_id;
    d.category_id = coco.category_of(l[static_cast<size_t>(i)]);
    d.score = s[static_cast<size_t>(i)];
    const double x1 = b[static_cast<size_t>(i * 4)], y1 = b[static_cast<size_t>(i * 4 + 1)];
    d.bbox = BoxXywh{x1, y1, b[static_cast<size_t>(i * 4 + 2)] - x1, b[static_cast<size_t>(i * 4 + 3)] - y1};
    if (with_masks) d.segmentation = Segmentation::from_rle(rle_encode(m.select(0, i)));
    out.push_back(std::move(d));
  }
}


Json detections_to_json(std::span<const Detection> detections) {
  Json out = Json::array();
  for (const Detection& d : detections) {
    Json j = Json::object();
    j["image_id"] = d.image_id;
    j["category_id"] = d.category_id;
    if (d.bbox) j["bbox"] = {(*d.bbox)[0], (*d.bbox)[1], (*d.bbox)[2], (*d.bbox)[3]};
    j["score"] = d.score;
    if (d.segmentation) j["segmentation"] = segmentation_to_json(*d.segmentation);
    out.push_back(std::move(j));
  }
  return out;
}

void write_detections(const std::string& path, std::span<const Detection> detections) {
  write_file_atomic(path, detections_to_json(detections).dump());
}

}  // namespace gndet::data
