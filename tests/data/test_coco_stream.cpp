// CocoInstances::load streams the file (data/coco_stream.cpp): it must give what
// CocoInstances::parse gives on the whole JSON tree, field for field, and the same errors.
#include <filesystem>

#include "data/coco.h"
#include "tensor/safetensors.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::data;

namespace {

// Annotations before images (any member order is valid JSON), COCO's extra image fields, every
// segmentation form, a null segmentation, and info / licenses members that gndet ignores.
const char* kFile = R"({
  "info": {"description": "x", "year": 2017},
  "annotations": [
    {"segmentation": [[10.25, 20.5, 40, 20, 40, 60.75, 10, 60], [1, 1, 3, 1, 3, 3]], "area": 1200.5, "iscrowd": 0,
     "image_id": 9, "bbox": [10, 20, 30, 40.5], "category_id": 3, "id": 11},
    {"id": 12, "image_id": 7, "category_id": 5, "bbox": [0, 0, 50, 50], "area": 900, "iscrowd": 1,
     "segmentation": {"size": [80, 100], "counts": [100, 20, 7880]}},
    {"id": 13, "image_id": 7, "category_id": 1, "bbox": [60, 50, 20, 20], "area": 400, "iscrowd": false, "ignore": 1,
     "segmentation": {"size": [80, 100], "counts": "bg4d0l10000000000000000000000000000000000000^`1"}},
    {"id": 14, "image_id": 9, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "segmentation": null}
  ],
  "licenses": [{"id": 3, "name": "l"}],
  "images": [{"license": 3, "file_name": "a.jpg", "coco_url": "http://x/a.jpg", "height": 80, "width": 100,
              "date_captured": "2013-11-14 16:28:13", "id": 7},
             {"id": 9, "file_name": "b.jpg", "width": 30, "height": 200, "flickr_url": "http://y"}],
  "categories": [{"supercategory": "s", "id": 5, "name": "five"}, {"id": 1, "name": "one"}, {"id": 3, "name": "three"}]
})";

Json segmentation_json(const CocoAnnotation& a) { return a.segmentation ? segmentation_to_json(*a.segmentation) : Json(); }

}  // namespace

TEST_CASE("COCO files are streamed into the same instances as parsing the whole tree", "[data][coco_stream]") {
  test::TempDir dir("coco_stream");
  const std::string path = dir.str() + "/instances.json";
  write_file_atomic(path, kFile);
  const CocoInstances streamed = CocoInstances::load(path);
  const CocoInstances tree = CocoInstances::parse(Json::parse(kFile), path);

  REQUIRE(streamed.images().size() == 2);
  REQUIRE(streamed.images().size() == tree.images().size());
  for (size_t i = 0; i < tree.images().size(); ++i) {
    const CocoImage &a = streamed.images()[i], &b = tree.images()[i];
    CHECK(a.id == b.id);
    CHECK(a.file_name == b.file_name);
    CHECK(a.width == b.width);
    CHECK(a.height == b.height);
    CHECK(streamed.annotations_of(static_cast<int64_t>(i)) == tree.annotations_of(static_cast<int64_t>(i)));
  }
  CHECK(streamed.sorted_category_ids() == tree.sorted_category_ids());
  for (int64_t l = 0; l < tree.num_classes(); ++l) CHECK(streamed.category_name(l) == tree.category_name(l));
  REQUIRE(streamed.annotations().size() == 4);
  REQUIRE(streamed.annotations().size() == tree.annotations().size());
  for (size_t i = 0; i < tree.annotations().size(); ++i) {
    INFO("annotation " << i);
    const CocoAnnotation &a = streamed.annotations()[i], &b = tree.annotations()[i];
    CHECK(a.id == b.id);
    CHECK(a.image_id == b.image_id);
    CHECK(a.category_id == b.category_id);
    CHECK(a.bbox == b.bbox);
    CHECK(a.area == b.area);
    CHECK(a.iscrowd == b.iscrowd);
    CHECK(a.ignore == b.ignore);
    CHECK(a.segmentation.has_value() == b.segmentation.has_value());
    CHECK(segmentation_json(a) == segmentation_json(b));
  }
  CHECK(streamed.annotations()[0].segmentation->polygons[0][0] == 10.25);
  CHECK(streamed.annotations_of(streamed.image_index(9)) == std::vector<int64_t>{0, 3});
}

TEST_CASE("streamed COCO files give parse()'s errors, naming the file and the JSON path", "[data][coco_stream]") {
  test::TempDir dir("coco_stream_errors");
  const std::string path = dir.str() + "/bad.json";
  const std::string head = R"({"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
                               "categories": [{"id": 1, "name": "x"}], "annotations": [)";
  const std::string ok = R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {head + ok + "," + R"({"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2], "area": 4}]})",
       "annotations[1].bbox: expected 4 numbers"},
      {head + R"({"id": 2, "image_id": 3, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 1}]})",
       "annotations[0].image_id: no image has this id"},
      {head + ok + "," + ok + "]}", "annotations[1].id: duplicate annotation id (also annotations[0])"},
      {head + "7]}", "annotations[0]: expected an object"},
      {R"({"images": [{"id": 1, "file_name": "a.png", "width": 10}], "categories": []})",
       "images[0].height: missing required field"},
      {R"({"images": [], "categories": [], "annotations": {"a": 1}})", "annotations"},
      {R"([1, 2])", "(top level): expected an object"},
  };
  for (const auto& [text, expected] : cases) {
    INFO(text);
    write_file_atomic(path, text);
    std::string tree_error = "no error", stream_error = "no error";
    try {
      CocoInstances::parse(Json::parse(text), path);
    } catch (const Error& e) {
      tree_error = e.what();
    }
    try {
      CocoInstances::load(path);
    } catch (const Error& e) {
      stream_error = e.what();
    }
    CHECK_THAT(stream_error, Catch::Contains(path + ": ") && Catch::Contains(expected));
    CHECK(stream_error == tree_error);
  }
}
