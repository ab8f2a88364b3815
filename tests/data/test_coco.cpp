#include <filesystem>

#include "data/coco.h"
#include "tensor/safetensors.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::data;

namespace {

// Three categories with non-contiguous ids listed out of order, every segmentation form, and one
// annotation per mmdetection skip rule.
const char* kInstances = R"({
  "images": [{"id": 7, "file_name": "a.png", "width": 100, "height": 80},
             {"id": 9, "file_name": "b.png", "width": 30, "height": 200},
             {"id": 11, "file_name": "c.png", "width": 64, "height": 64},
             {"id": 12, "file_name": "d.png", "width": 64, "height": 64}],
  "categories": [{"id": 5, "name": "five"}, {"id": 1, "name": "one"}, {"id": 3, "name": "three"}],
  "annotations": [
    {"id": 1, "image_id": 7, "category_id": 3, "bbox": [10, 20, 30, 40], "area": 1200, "iscrowd": 0,
     "segmentation": [[10, 20, 40, 20, 40, 60, 10, 60]]},
    {"id": 2, "image_id": 7, "category_id": 5, "bbox": [0, 0, 50, 50], "area": 900, "iscrowd": 1,
     "segmentation": {"size": [80, 100], "counts": [100, 20, 7880]}},
    {"id": 3, "image_id": 7, "category_id": 1, "bbox": [5, 5, 0.5, 10], "area": 5, "iscrowd": 0},
    {"id": 4, "image_id": 7, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 0, "iscrowd": 0},
    {"id": 5, "image_id": 7, "category_id": 1, "bbox": [120, 5, 10, 10], "area": 100, "iscrowd": 0},
    {"id": 6, "image_id": 7, "category_id": 2, "bbox": [5, 5, 10, 10], "area": 100, "iscrowd": 0},
    {"id": 7, "image_id": 7, "category_id": 1, "bbox": [5, 5, 10, 10], "area": 100, "iscrowd": 0, "ignore": 1},
    {"id": 8, "image_id": 7, "category_id": 1, "bbox": [60, 50, 20, 20], "area": 400, "iscrowd": false,
     "segmentation": {"size": [80, 100], "counts": "bg4d0l10000000000000000000000000000000000000^`1"}},
    {"id": 9, "image_id": 9, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 0},
    {"id": 10, "image_id": 11, "category_id": 1, "bbox": [1, 1, 10, 10], "area": 100, "iscrowd": 1}
  ]})";

std::string write_temp(const std::string& name, const std::string& text) {
  const std::string dir = std::filesystem::temp_directory_path() / ("gndet_coco_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  write_file_atomic(dir + "/" + name, text);
  return dir + "/" + name;
}

}  // namespace

TEST_CASE("COCO instances: parsing, contiguous labels and mmdetection's per-image ground truth", "[data]") {
  const CocoInstances c = CocoInstances::parse(Json::parse(kInstances), "inst.json");
  REQUIRE(c.images().size() == 4);
  REQUIRE(c.annotations().size() == 10);
  // cat2label: ids sorted ascending
  CHECK(c.num_classes() == 3);
  CHECK(c.label_of(1) == 0);
  CHECK(c.label_of(3) == 1);
  CHECK(c.label_of(5) == 2);
  CHECK(c.label_of(2) == -1);
  CHECK(c.category_of(2) == 5);
  CHECK(c.category_name(0) == "one");
  CHECK_THROWS_WITH(c.category_of(3), Catch::Contains("label 3 is outside 0..2"));
  CHECK(c.image_index(9) == 1);
  CHECK(c.image_index(8) == -1);
  CHECK(c.annotations_of(0).size() == 8);
  CHECK(c.annotations()[1].iscrowd);
  CHECK(!c.annotations()[7].iscrowd);
  REQUIRE(c.annotations()[1].segmentation.has_value());
  CHECK(c.annotations()[1].segmentation->kind == Segmentation::Kind::Rle);
  CHECK(!c.annotations()[1].segmentation->compressed);
  CHECK(c.annotations()[7].segmentation->compressed);
  CHECK(!c.annotations()[2].segmentation.has_value());

  const GtInstances gt = parse_ann_info(c, 0);
  // kept: id 1 (label of category 3 = 1) and id 8; crowd id 2 -> ignore; ids 3 (w < 1), 4 (area 0),
  // 5 (outside the image), 6 (unknown category), 7 (ignore flag) skipped.
  REQUIRE(gt.boxes.size() == 2);
  CHECK(gt.boxes[0] == std::array<float, 4>{10, 20, 40, 60});
  CHECK(gt.labels == std::vector<int64_t>{1, 0});
  CHECK(gt.annotations == std::vector<int64_t>{0, 7});
  REQUIRE(gt.ignore_boxes.size() == 1);
  CHECK(gt.ignore_boxes[0] == std::array<float, 4>{0, 0, 50, 50});

  // masks: the polygon covers x 10..39, y 20..59; the uncompressed crowd RLE keeps its runs
  const Rle poly = segmentation_to_rle(*c.annotations()[0].segmentation, 80, 100);
  CHECK(rle_area(poly) == 30 * 40);
  CHECK(rle_to_box(poly) == BoxXywh{10, 20, 30, 40});
  CHECK(segmentation_to_rle(*c.annotations()[1].segmentation, 80, 100).counts == std::vector<uint32_t>{100, 20, 7880});
}

TEST_CASE("training images: no usable box or a side under 32 pixels drops an image", "[data]") {
  const CocoInstances c = CocoInstances::parse(Json::parse(kInstances), "inst.json");
  // image 9 is 30 wide; image 11 has only a crowd box; image 12 has nothing
  CHECK(select_train_images(c) == std::vector<int64_t>{0});
  CHECK(select_train_images(c, false, 32) == std::vector<int64_t>{0, 2, 3});
  CHECK(select_train_images(c, true, 0) == std::vector<int64_t>{0, 1});
}

TEST_CASE("malformed annotation files give an error with the file and the JSON path of the field", "[data]") {
  auto parse_error = [](const std::string& text) {
    try {
      CocoInstances::parse(Json::parse(text), "bad.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const std::string head = R"({"images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
                               "categories": [{"id": 1, "name": "x"}], "annotations": [)";
  const std::string ok = R"({"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 4})";
  CHECK_THAT(
      parse_error(head + ok + "," + R"({"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2], "area": 4}]})"),
      Catch::Contains("bad.json: annotations[1].bbox: expected 4 numbers"));
  CHECK_THAT(parse_error(head + R"({"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2]}]})"),
             Catch::Contains("bad.json: annotations[0].area: missing required field"));
  CHECK_THAT(parse_error(head + R"({"id": 2, "image_id": 3, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 1}]})"),
             Catch::Contains("annotations[0].image_id: no image has this id"));
  CHECK_THAT(parse_error(head + ok + "," + ok + "]}"), Catch::Contains("annotations[1].id: duplicate annotation id"));
  CHECK_THAT(parse_error(head + R"({"id": "x", "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 1}]})"),
             Catch::Contains("annotations[0].id: expected an integer, got \"x\""));
  CHECK_THAT(parse_error(head + R"({"id": 2, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2], "area": 1,
                                    "segmentation": {"size": [10, 10], "counts": "0 x"}}]})"),
             Catch::Contains("annotations[0].segmentation.counts") && Catch::Contains("not a valid RLE character"));
  CHECK_THAT(parse_error(R"({"images": [{"id": 1, "file_name": "a.png", "width": 10}], "categories": []})"),
             Catch::Contains("images[0].height: missing required field"));
  CHECK_THAT(parse_error(R"([1, 2])"), Catch::Contains("bad.json: (top level): expected an object"));

  const std::string path = write_temp("broken.json", "{\"images\": [");
  CHECK_THROWS_WITH(CocoInstances::load(path), Catch::Contains(path) && Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(CocoInstances::load(path + ".missing"), Catch::Contains("cannot open COCO annotation file"));
  std::filesystem::remove_all(std::filesystem::path(path).parent_path());
}
