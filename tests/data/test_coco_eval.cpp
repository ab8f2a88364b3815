// The COCO evaluator against pycocotools' numbers stored in tests/data/fixtures/coco_eval_cases.json
// (tools/reference/make_coco_fixtures.py: random gt with crowds, empty images, images without
// detections, ties in scores, > 100 detections in one image, an annotation with id 0, areas on
// the range limits, detections of unknown categories).
#include <filesystem>

#include "data/coco_eval.h"
#include "data/shapes.h"
#include "gndet_config.h"
#include "tensor/factory.h"
#include "tensor/safetensors.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::data;

namespace {

Json load_cases() {
  return read_json_file(std::string(GNDET_SOURCE_DIR) + "/tests/data/fixtures/coco_eval_cases.json", "test fixture");
}

// pycocotools averages with numpy's pairwise summation, we add in order: the two differ by
// rounding only (~1e-16 per term over <= 5e4 terms), far inside 1e-9.
constexpr double kStatTolerance = 1e-9;

void check_stats(const std::array<double, 12>& got, const Json& want) {
  REQUIRE(want.size() == 12);
  for (size_t i = 0; i < 12; ++i) {
    INFO("stat " << i << ": gndet " << got[i] << ", pycocotools " << want[i].get<double>());
    CHECK(std::abs(got[i] - want[i].get<double>()) <= kStatTolerance);
  }
}

}  // namespace

TEST_CASE("COCO evaluation equals pycocotools on the stored random cases (bbox, segm, both area conventions)",
          "[data]") {
  const Json fixture = load_cases();
  REQUIRE(fixture["cases"].size() >= 3);
  for (const Json& c : fixture["cases"]) {
    const std::string name = c["name"];
    INFO("case " << name);
    const CocoInstances gt = CocoInstances::parse(c["gt"], name + "/gt");
    const std::vector<Detection> dets = parse_detections(c["dt"], name + "/dt");
    EvalOptions opt;
    opt.iou_type = IouType::Bbox;
    const EvalResult bbox = evaluate(gt, dets, opt);
    check_stats(bbox.stats, c["expected"]["bbox"]);
    CHECK(bbox.summary == c["expected"]["bbox_summary"].get<std::string>());

    opt.iou_type = IouType::Segm;
    opt.mmdet_segm_area = false;  // pycocotools' loadRes on results that carry boxes: area = w * h
    check_stats(evaluate(gt, dets, opt).stats, c["expected"]["segm"]);
    opt.mmdet_segm_area = true;  // mmdetection drops the boxes: area = mask area
    check_stats(evaluate(gt, dets, opt).stats, c["expected"]["segm_mmdet"]);
  }
}

TEST_CASE("COCO evaluation is independent of the thread count", "[data]") {
  const Json fixture = load_cases();
  const Json& c = fixture["cases"][0];
  const CocoInstances gt = CocoInstances::parse(c["gt"], "gt");
  const std::vector<Detection> dets = parse_detections(c["dt"], "dt");
  EvalOptions one, two;
  one.iou_type = two.iou_type = IouType::Segm;
  one.num_threads = 1;
  two.num_threads = 2;
  const EvalResult a = evaluate(gt, dets, one), b = evaluate(gt, dets, two);
  CHECK(a.stats == b.stats);
  CHECK(a.precision == b.precision);
}

TEST_CASE("evaluation thresholds are numpy's linspace and the summary is pycocotools' format", "[data]") {
  const EvalParams& p = coco_eval_params();
  REQUIRE(p.iou_thresholds.size() == 10);
  REQUIRE(p.recall_thresholds.size() == 101);
  // numpy gives 0.8999999999999999 for the 9th threshold (0.5 + 8 * 0.05 in floating point)
  CHECK(p.iou_thresholds[8] == 0.5 + 8 * ((0.95 - 0.5) / 9));
  CHECK(p.iou_thresholds[8] != 0.9);
  CHECK(p.iou_thresholds[5] == 0.75);  // summarize() finds AP75 by exact comparison
  CHECK(p.recall_thresholds[100] == 1.0);
  std::array<double, 12> stats;
  stats.fill(-1);
  stats[0] = 0.3745;
  const std::string s = format_summary(stats);
  CHECK(s.rfind(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.374\n", 0) == 0);
  CHECK(s.find(" Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ] = -1.000\n") !=
        std::string::npos);
}

TEST_CASE("evaluation edge cases: no detections, and results for images the gt does not have", "[data]") {
  const Json fixture = load_cases();
  const Json& c = fixture["cases"][0];
  const CocoInstances gt = CocoInstances::parse(c["gt"], "gt.json");
  EvalOptions opt;
  // No detections: every category with gt has precision 0 (pycocotools itself fails on an empty list).
  const EvalResult none = evaluate(gt, std::vector<Detection>{}, opt);
  CHECK(none.stats[0] == 0.0);
  CHECK(none.stats[8] == 0.0);

  std::vector<Detection> dets = parse_detections(c["dt"], "dt.json");
  dets[3].image_id = 987654321;
  opt.results_name = "dt.json";
  CHECK_THROWS_WITH(evaluate(gt, dets, opt),
                    Catch::Contains("dt.json: [3].image_id: image 987654321 is not in the ground truth") &&
                        Catch::Contains("Results do not correspond to current coco set"));

  // The first result decides that results carry boxes; a later one without is an error, not a crash.
  dets = parse_detections(c["dt"], "dt.json");
  dets[5].bbox.reset();
  CHECK_THROWS_WITH(evaluate(gt, dets, opt), Catch::Contains("[5].bbox: missing"));
}

TEST_CASE("results files: written, read back, and malformed ones rejected with the field's path", "[data]") {
  const Json fixture = load_cases();
  const std::vector<Detection> dets = parse_detections(fixture["cases"][0]["dt"], "dt");
  const std::string dir = std::filesystem::temp_directory_path() / ("gndet_results_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/dt.json";
  write_detections(path, dets);
  const std::vector<Detection> back = read_detections(path);
  REQUIRE(back.size() == dets.size());
  for (size_t i = 0; i < dets.size(); ++i) {
    CHECK(back[i].image_id == dets[i].image_id);
    CHECK(back[i].score == dets[i].score);  // doubles are written in shortest round-trip form
    CHECK(back[i].bbox == dets[i].bbox);
    REQUIRE(back[i].segmentation.has_value());
    CHECK(back[i].segmentation->rle == dets[i].segmentation->rle);
  }
  write_file_atomic(path, R"([{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3], "score": 0.5}])");
  CHECK_THROWS_WITH(read_detections(path), Catch::Contains("dt.json: [0].bbox: expected 4 numbers"));
  write_file_atomic(path, R"([{"image_id": 1, "category_id": 2, "bbox": [1, 2, 3, 4]}])");
  CHECK_THROWS_WITH(read_detections(path), Catch::Contains("[0].score: missing required field"));
  write_file_atomic(path, R"({"image_id": 1})");
  CHECK_THROWS_WITH(read_detections(path), Catch::Contains("must be a JSON array"));
  std::filesystem::remove_all(dir);
}

TEST_CASE("append_detections writes mmdetection-style results; the ground truth itself scores AP 1", "[data]") {
  // Ground truth: rendered shapes images (masks as polygons and RLEs), ids 1..4.
  Json gt_json = {
      {"images", Json::array()},
      {"annotations", Json::array()},
      {"categories",
       {{{"id", 1}, {"name", "square"}}, {{"id", 2}, {"name", "circle"}}, {{"id", 3}, {"name", "triangle"}}}}};
  int64_t ann_id = 1;
  for (int64_t i = 0; i < 4; ++i) {
    const ShapesImage img = render_shapes_image(9, 1, i, 96);
    gt_json["images"].push_back({{"id", i + 1}, {"file_name", "x.png"}, {"width", 96}, {"height", 96}});
    for (const CocoAnnotation& a : img.annotations) {
      gt_json["annotations"].push_back({{"id", ann_id++},
                                        {"image_id", i + 1},
                                        {"category_id", a.category_id},
                                        {"bbox", {a.bbox[0], a.bbox[1], a.bbox[2], a.bbox[3]}},
                                        {"area", a.area},
                                        {"iscrowd", 0},
                                        {"segmentation", segmentation_to_json(*a.segmentation)}});
    }
  }
  const CocoInstances gt = CocoInstances::parse(gt_json, "shapes gt");
  std::vector<Detection> dets;
  for (int64_t im = 0; im < 4; ++im) {
    const auto& anns = gt.annotations_of(im);
    const int64_t n = static_cast<int64_t>(anns.size());
    Tensor boxes = empty({n, 4}, kFloat32), scores = full({n}, 0.9, kFloat32), labels = empty({n}, kInt64);
    std::vector<Rle> masks;
    for (int64_t k = 0; k < n; ++k) {
      const CocoAnnotation& a = gt.annotations()[static_cast<size_t>(anns[static_cast<size_t>(k)])];
      float* b = boxes.data<float>() + k * 4;
      b[0] = static_cast<float>(a.bbox[0]);
      b[1] = static_cast<float>(a.bbox[1]);
      b[2] = static_cast<float>(a.bbox[0] + a.bbox[2]);
      b[3] = static_cast<float>(a.bbox[1] + a.bbox[3]);
      labels.data<int64_t>()[k] = gt.label_of(a.category_id);
      masks.push_back(segmentation_to_rle(*a.segmentation, 96, 96));
    }
    append_detections(dets, gt, gt.images()[static_cast<size_t>(im)].id, boxes, scores, labels,
                      rle_decode_stack(masks, 96, 96));
  }
  REQUIRE(dets.size() == gt.annotations().size());
  CHECK(dets[0].category_id == gt.annotations()[0].category_id);
  CHECK(*dets[0].bbox == gt.annotations()[0].bbox);  // integer boxes survive float32 exactly
  CHECK(dets[0].score == static_cast<double>(0.9f));
  for (IouType type : {IouType::Bbox, IouType::Segm}) {
    EvalOptions opt;
    opt.iou_type = type;
    const EvalResult r = evaluate(gt, dets, opt);
    CHECK(r.stats[0] == 1.0);  // AP
    CHECK(r.stats[8] == 1.0);  // AR@100
  }
  CHECK_THROWS_WITH(append_detections(dets, gt, 77, empty({0, 4}), empty({0}), empty({0}, kInt64)),
                    Catch::Contains("image id 77 is not in shapes gt"));
}
