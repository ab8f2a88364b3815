// CocoInstances::load: a COCO instances file read as a stream. nlohmann's SAX-driven callback
// parser reads the file through an input stream (the text is never held whole); each element of
// "annotations" becomes a CocoAnnotation (parse_annotation, the same checks and error paths as
// CocoInstances::parse) the moment its closing brace is read, and its JSON is dropped. Elements
// of "images" keep only the four fields gndet reads. What is left (images, categories, an empty
// "annotations") goes through CocoInstances::parse, and the streamed annotations are then checked
// and indexed exactly as parse() does.
//
// Peak memory for train2017's size (448 MB, 860k polygons): bench/results/coco_memory.md.
#include <fstream>
#include <unordered_map>

#include "data/coco.h"
#include "tensor/json_text.h"
#include "tensor/safetensors.h"

namespace gndet::data {

CocoInstances CocoInstances::load(const std::string& path) {
  check_not_special_file(path, "COCO annotation file");
  std::ifstream in(path, std::ios::binary);
  GNDET_CHECK(in.good(), "cannot open COCO annotation file '", path, "'");
  std::vector<CocoAnnotation> anns;
  std::string top_key;  // the member of the top-level object being read
  bool top_array = false;  // ... and it is an array (anything else is left to parse() to report)
  auto on_event = [&](int depth, Json::parse_event_t event, Json& parsed) {
    // The text is never held whole, so json_text.h's pre-scan cannot run: the same depth bound
    // (copies and dump() of a deeper value would recurse past the stack) is enforced here.
    if (depth > kMaxJsonDepth) {
      GNDET_FAIL("COCO annotation file '", path, "' nests arrays/objects deeper than ", kMaxJsonDepth,
                 " levels; no valid input needs that");
    }
    if (depth == 1 && event == Json::parse_event_t::key) {
      top_key = parsed.get<std::string>();
      top_array = false;
      return true;
    }
    if (depth == 1 && event == Json::parse_event_t::array_start) top_array = true;
    const bool element_done = top_array && depth == 2 &&
                              (event == Json::parse_event_t::object_end || event == Json::parse_event_t::value);
    if (element_done && top_key == "annotations") {
      anns.push_back(parse_annotation(ConfigNode(parsed, path, "annotations[" + std::to_string(anns.size()) + "]")));
      return false;  // dropped from the document
    }
    if (element_done && top_key == "images" && parsed.is_object()) {
      for (auto it = parsed.begin(); it != parsed.end();) {
        const std::string& k = it.key();
        it = (k == "id" || k == "file_name" || k == "width" || k == "height") ? std::next(it) : parsed.erase(it);
      }
    }
    return true;
  };
  Json rest;
  try {
    rest = Json::parse(in, on_event);
  } catch (const Json::exception& e) {  // parse_error, and out_of_range.406 for 1e400
    std::string why = e.what();             // nlohmann quotes the offending token whole: cut it
    if (why.size() > 200) why = why.substr(0, 197) + "...";
    GNDET_FAIL("COCO annotation file '", path, "' is not valid JSON (", why, ")");
  }
  CocoInstances c = parse(rest, path);  // images and categories, with every check of parse()

  // The annotation checks of parse(), on the streamed annotations.
  std::unordered_map<int64_t, size_t> seen_ids;
  seen_ids.reserve(anns.size());
  for (size_t i = 0; i < anns.size(); ++i) {
    const CocoAnnotation& ann = anns[i];
    const std::string where = "annotations[" + std::to_string(i) + "]";
    const int64_t im = c.image_index(ann.image_id);
    if (im < 0) ConfigNode(Json(ann.image_id), path, where + ".image_id").fail("no image has this id");
    if (!seen_ids.emplace(ann.id, i).second) {
      ConfigNode(Json(ann.id), path, where + ".id")
          .fail("duplicate annotation id (also annotations[" + std::to_string(seen_ids[ann.id]) + "])");
    }
    c.per_image_[static_cast<size_t>(im)].push_back(static_cast<int64_t>(i));
  }
  c.annotations_ = std::move(anns);
  return c;
}

}  // namespace gndet::data
