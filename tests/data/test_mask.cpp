// RLE masks against pycocotools: the fixture tests/data/fixtures/mask_cases.json holds inputs and
// the strings, areas, boxes and IoUs pycocotools.mask computed for them
// (tools/reference/make_coco_fixtures.py). Strings must match byte for byte; areas, boxes and IoUs
// come from the same integer counts through the same single division, so they must match exactly.
#include <fstream>

#include "data/coco.h"
#include "data/mask.h"
#include "gndet_config.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::data;

namespace {

Json load_fixture(const std::string& name) {
  return read_json_file(std::string(GNDET_SOURCE_DIR) + "/tests/data/fixtures/" + name, "test fixture");
}

std::vector<uint8_t> bitmap_from_rows(const Json& rows) {
  std::vector<uint8_t> out;
  for (const Json& r : rows) {
    for (char c : r.get<std::string>()) out.push_back(c == '1');
  }
  return out;
}

BoxXywh box_of(const Json& j) {
  return {j[0].get<double>(), j[1].get<double>(), j[2].get<double>(), j[3].get<double>()};
}

}  // namespace

TEST_CASE("polygon rasterisation matches pycocotools' rleFrPoly byte for byte", "[data]") {
  const Json fx = load_fixture("mask_cases.json");
  const Json& tasks = fx["tasks"]["polygons"];
  const Json& expected = fx["expected"]["polygons"];
  REQUIRE(tasks.size() == expected.size());
  REQUIRE(tasks.size() >= 50);
  for (size_t i = 0; i < tasks.size(); ++i) {
    INFO("polygon task " << i);
    const int64_t h = tasks[i]["h"], w = tasks[i]["w"];
    Segmentation seg;
    for (size_t j = 0; j < tasks[i]["polygons"].size(); ++j) {
      const std::vector<double> poly = tasks[i]["polygons"][j].get<std::vector<double>>();
      CHECK(rle_to_string(rle_from_polygon(poly, h, w)) == expected[i]["parts"][j].get<std::string>());
      seg.polygons.push_back(poly);
    }
    const Rle merged = segmentation_to_rle(seg, h, w);
    CHECK(rle_to_string(merged) == expected[i]["merged"].get<std::string>());
    CHECK(rle_area(merged) == expected[i]["area"].get<uint32_t>());
    CHECK(rle_to_box(merged) == box_of(expected[i]["bbox"]));
  }
}

TEST_CASE("bitmap encoding, compressed strings, area and box match pycocotools", "[data]") {
  const Json fx = load_fixture("mask_cases.json");
  const Json& tasks = fx["tasks"]["bitmaps"];
  const Json& expected = fx["expected"]["bitmaps"];
  REQUIRE(tasks.size() == expected.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    INFO("bitmap task " << i);
    const int64_t h = tasks[i]["h"], w = tasks[i]["w"];
    const std::vector<uint8_t> bits = bitmap_from_rows(tasks[i]["rows"]);
    const Rle rle = rle_encode(bits.data(), h, w);
    const std::string want = expected[i]["counts"].get<std::string>();
    CHECK(rle_to_string(rle) == want);
    CHECK(rle_area(rle) == expected[i]["area"].get<uint32_t>());
    CHECK(rle_to_box(rle) == box_of(expected[i]["bbox"]));
    // decoding pycocotools' string gives the bitmap back
    const Rle parsed = rle_from_string(want, h, w);
    CHECK(parsed == rle);
    std::vector<uint8_t> decoded(static_cast<size_t>(h * w));
    rle_decode(parsed, decoded.data());
    CHECK(decoded == bits);
  }
}

TEST_CASE("merge (union / intersection) and mask IoU with the crowd rule match pycocotools", "[data]") {
  const Json fx = load_fixture("mask_cases.json");
  const Json& merges = fx["tasks"]["merges"];
  for (size_t i = 0; i < merges.size(); ++i) {
    INFO("merge task " << i);
    const int64_t h = merges[i]["h"], w = merges[i]["w"];
    std::vector<Rle> rles;
    for (const Json& c : merges[i]["counts"]) rles.push_back(rle_from_string(c.get<std::string>(), h, w));
    CHECK(rle_to_string(rle_merge(rles, merges[i]["intersect"].get<bool>())) ==
          fx["expected"]["merges"][i].get<std::string>());
  }
  const Json& ious = fx["tasks"]["ious"];
  for (size_t i = 0; i < ious.size(); ++i) {
    INFO("mask iou task " << i);
    const int64_t h = ious[i]["h"], w = ious[i]["w"];
    std::vector<Rle> dt, gt;
    for (const Json& c : ious[i]["dt"]) dt.push_back(rle_from_string(c.get<std::string>(), h, w));
    for (const Json& c : ious[i]["gt"]) gt.push_back(rle_from_string(c.get<std::string>(), h, w));
    const std::vector<uint8_t> crowd = ious[i]["iscrowd"].get<std::vector<uint8_t>>();
    const std::vector<double> got = rle_iou(dt, gt, crowd);
    const Json& want = fx["expected"]["ious"][i];
    for (size_t d = 0; d < dt.size(); ++d) {
      for (size_t g = 0; g < gt.size(); ++g) CHECK(got[d * gt.size() + g] == want[d][g].get<double>());
    }
  }
  const Json& box_ious = fx["tasks"]["box_ious"];
  for (size_t i = 0; i < box_ious.size(); ++i) {
    INFO("box iou task " << i);
    std::vector<BoxXywh> dt, gt;
    for (const Json& b : box_ious[i]["dt"]) dt.push_back(box_of(b));
    for (const Json& b : box_ious[i]["gt"]) gt.push_back(box_of(b));
    const std::vector<uint8_t> crowd = box_ious[i]["iscrowd"].get<std::vector<uint8_t>>();
    const std::vector<double> got = box_iou(dt, gt, crowd);
    const Json& want = fx["expected"]["box_ious"][i];
    for (size_t d = 0; d < dt.size(); ++d) {
      for (size_t g = 0; g < gt.size(); ++g) CHECK(got[d * gt.size() + g] == want[d][g].get<double>());
    }
  }
}

TEST_CASE("compressed RLE strings round-trip large and decreasing runs", "[data]") {
  Generator gen(11);
  for (int trial = 0; trial < 50; ++trial) {
    Rle rle{1 << 14, 1 << 14, {}};
    const int n = static_cast<int>(gen.randint(1, 40));
    for (int i = 0; i < n; ++i) {
      // mixes tiny and huge runs so that deltas of both signs and many digits occur
      rle.counts.push_back(static_cast<uint32_t>(gen.uniform() < 0.3 ? gen.randint(0, 4) : gen.randint(0, 1 << 22)));
    }
    CHECK(rle_from_string(rle_to_string(rle), rle.height, rle.width) == rle);
  }
  // a hand-checked value: one run of 3 zeros, 4 ones, 3 zeros of a 10 x 1 mask
  const Rle small{10, 1, {3, 4, 3}};
  CHECK(rle_to_string(small) == "343");
}

TEST_CASE("bitmap tensors and RLEs convert both ways", "[data]") {
  Generator gen(5);
  const Tensor mask = randint(0, 2, {7, 9}, gen, kUInt8);
  const Rle rle = rle_encode(mask);
  CHECK(rle.height == 7);
  CHECK(rle.width == 9);
  const Tensor back = rle_decode(rle);
  CHECK(back.to_vector<uint8_t>() == mask.to_vector<uint8_t>());
  int64_t ones = 0;
  for (uint8_t v : mask.to_vector<uint8_t>()) ones += v;
  CHECK(rle_area(rle) == ones);
  // a transposed (non-contiguous) view encodes its logical content
  const Tensor t = mask.transpose(0, 1);
  CHECK(rle_decode(rle_encode(t)).to_vector<uint8_t>() == t.contiguous().to_vector<uint8_t>());
  const Tensor stack = rle_decode_stack(std::vector<Rle>{rle, rle}, 7, 9);
  CHECK(stack.shape() == Shape{2, 7, 9});
}

TEST_CASE("malformed RLE input gives clear errors", "[data]") {
  CHECK_THROWS_WITH(rle_from_string("34 3", 10, 1), Catch::Contains("not a valid RLE character"));
  CHECK_THROWS_WITH(rle_from_string("3P", 10, 1), Catch::Contains("truncated"));  // 'P' sets the continuation bit
  std::vector<uint8_t> out(10);
  CHECK_THROWS_WITH(rle_decode(Rle{10, 1, {3, 4}}, out.data()), Catch::Contains("sum to 7 pixels"));
  CHECK_THROWS_WITH(rle_encode(zeros({2, 2, 2}, kUInt8)), Catch::Contains("(H, W) uint8"));
  // masks of different sizes: pycocotools answers -1 for IoU and an empty RLE for merge
  const Rle a{2, 2, {0, 4}}, b{4, 1, {0, 4}};
  CHECK(rle_iou(std::vector<Rle>{a}, std::vector<Rle>{b}, {})[0] == -1.0);
  CHECK(rle_merge(std::vector<Rle>{a, b}, false) == Rle{});
}
