// Malformed input found by fuzzing the CLI (issue 16): each case ends in one gndet::Error that
// names the file / key / argument, or in the correct result, never in a crash, a hang or a huge
// allocation. The CLI-level cases (exit code 1, one "error:" line) are in tests/apps/test_cli_robust.cpp.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>

#include "apps/args.h"
#include "data/coco.h"
#include "data/coco_results.h"
#include "data/image.h"
#include "tensor/config.h"
#include "data/mask.h"
#include "detection/detector.h"
#include "nn/module.h"
#include "tensor/factory.h"
#include "tensor/json_text.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"
#include "gndet_config.h"

using namespace gndet;

namespace {

std::string nested_array(int depth) { return std::string(static_cast<size_t>(depth), '[') + std::string(static_cast<size_t>(depth), ']'); }

void write(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

// A safetensors file with the given JSON header text and `data` bytes after it.
void write_safetensors(const std::string& path, const std::string& header, const std::string& data = "") {
  std::string bytes(8, '\0');
  const uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  write(path, bytes + header + data);
}

}  // namespace

TEST_CASE("deep JSON is refused before anything recurses over it", "[robust][tensor]") {
  // nlohmann parses and destroys iteratively, but copy and dump() recurse once per level: 100000
  // levels crashed the error message (stack overflow). 512 levels pass (no real file comes close).
  CHECK_NOTHROW(parse_json_text(nested_array(kMaxJsonDepth), "x"));
  CHECK_THROWS_WITH(parse_json_text(nested_array(100000), "config 'deep.json'"),
                    Catch::Contains("config 'deep.json' nests arrays/objects deeper than 512 levels"));
  // Brackets inside strings and comments do not count.
  CHECK_NOTHROW(parse_json_text("{\"a\": \"" + std::string(5000, '[') + "\"} // " + std::string(5000, '{'), "x", true));
  CHECK_THROWS_WITH(parse_json_text("[1e400]", "'a.json'"), Catch::Contains("'a.json' is not valid JSON") &&
                                                               Catch::Contains("number overflow"));
}

TEST_CASE("json_excerpt is bounded whatever the value", "[robust][tensor]") {
  // A 100000-deep value built in memory (destruction is iterative, so this is safe to hold).
  nlohmann::json deep = nlohmann::json::array();
  for (int i = 0; i < 100000; ++i) deep = nlohmann::json::array({std::move(deep)});
  const std::string e = json_excerpt(deep, 80);
  CHECK(e.size() == 80);
  CHECK(e.substr(77) == "...");
  CHECK(json_excerpt(nlohmann::json(std::string(1 << 20, 'x')), 40).size() == 40);
  CHECK(json_excerpt(nlohmann::json{{"a", 1}}, 80) == "{\"a\":1}");
  CHECK(json_excerpt(nlohmann::json::parse("[1,\"b\",null,2.5]")) == "[1,\"b\",null,2.5]");
}

TEST_CASE("safetensors: deep headers and overflowing shapes are refused", "[robust][tensor]") {
  test::TempDir dir("robust_st");
  const std::string deep = dir.str() + "/deep.safetensors";
  write_safetensors(deep, "{\"__metadata__\": " + nested_array(100000) + "}");
  CHECK_THROWS_WITH(load_safetensors(deep), Catch::Contains("deep.safetensors") && Catch::Contains("deeper than 512"));
  // [2^32, 2^32] floats: the element count wrapped to 0 and the tensor was accepted as empty.
  const std::string big = dir.str() + "/big.safetensors";
  write_safetensors(big, R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})");
  CHECK_THROWS_WITH(load_safetensors(big), Catch::Contains("tensor 'w'") && Catch::Contains("more bytes than fit"));
  CHECK_THROWS_WITH(shape_numel({int64_t{1} << 32, int64_t{1} << 32}), Catch::Contains("more elements than fit"));
  CHECK(shape_numel({int64_t{1} << 31, 0, int64_t{1} << 31}) == 0);
  // A bad shape shows a bounded excerpt, not the whole value; so does nlohmann's own message, which
  // quotes a whole overlong number token.
  const std::string bad = dir.str() + "/bad.safetensors";
  write_safetensors(bad, R"({"w": {"dtype": "F32", "shape": [-1, )" + std::string(3000, '7') + R"(], "data_offsets": [0, 0]}})");
  try {
    load_safetensors(bad);
    FAIL("no error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()).size() < 300);
  }
  CHECK_THROWS_WITH(load_safetensors(dir.str()), Catch::Contains("is a directory"));
}

TEST_CASE("COCO and results files: deep nesting, 1e400 and directories name the file", "[robust][data]") {
  test::TempDir dir("robust_coco");
  const std::string deep = dir.str() + "/deep.json";
  write(deep, "[{\"image_id\": 1, \"category_id\": 1, \"score\": 0.5, \"bbox\": " + nested_array(100000) + "}]");
  CHECK_THROWS_WITH(data::read_detections(deep), Catch::Contains("deep.json") && Catch::Contains("deeper than 512"));
  CHECK_THROWS_WITH(read_json_file(deep, "COCO file"), Catch::Contains("COCO file '") &&
                                                              Catch::Contains("deeper than 512"));
  const std::string overflow = dir.str() + "/overflow.json";
  write(overflow, "[{\"image_id\": 1, \"category_id\": 1, \"score\": 1e400, \"bbox\": [0, 0, 1, 1]}]");
  CHECK_THROWS_WITH(data::read_detections(overflow), Catch::Contains("overflow.json' is not valid JSON") &&
                                                         Catch::Contains("number overflow"));
  CHECK_THROWS_WITH(read_json_file(dir.str(), "COCO file"), Catch::Contains("is a directory"));
  // The streamed COCO instances reader (data/coco_stream.cpp) applies the same bounds: found by the
  // coco fuzz target after the streaming reader replaced read_json_file there.
  const std::string deep_coco = dir.str() + "/deep_coco.json";
  write(deep_coco, "{\"images\": " + nested_array(100000) + "}");
  CHECK_THROWS_WITH(data::CocoInstances::load(deep_coco),
                    Catch::Contains("COCO annotation file '") && Catch::Contains("deeper than 512"));
  const std::string overflow_coco = dir.str() + "/overflow_coco.json";
  write(overflow_coco, "{\"images\": [{\"id\": 1, \"file_name\": \"a.png\", \"width\": 61e4004, \"height\": 4}]}");
  CHECK_THROWS_WITH(data::CocoInstances::load(overflow_coco),
                    Catch::Contains("overflow_coco.json' is not valid JSON") && Catch::Contains("number overflow"));
  CHECK_THROWS_WITH(data::CocoInstances::load(dir.str()), Catch::Contains("is a directory"));
  // A ConfigNode error quotes the value bounded and names the path.
  std::string ones = "1";
  for (int i = 0; i < 1000; ++i) ones += ", 1";
  const Json long_value = Json::parse("{\"bbox\": [" + ones + "]}");
  const std::string src = "f.json";
  CHECK_THROWS_WITH(ConfigNode(long_value, src, "")["bbox"].as_int(),
                    Catch::Contains("f.json: bbox: expected an integer, got [1,1,1") && Catch::Contains("..."));
  const Json huge = Json::parse("{\"id\": 18446744073709551615}");
  CHECK_THROWS_WITH(ConfigNode(huge, src, "")["id"].as_int(), Catch::Contains("f.json: id: expected an integer below 2^63"));
}

TEST_CASE("configs: deep nesting, 1e400, directories and out-of-range integers name the file or key", "[robust][detection]") {
  test::TempDir dir("robust_cfg");
  const std::string deep = dir.str() + "/deep.json";
  write(deep, "{\"model\": {}, \"_notes\": " + nested_array(100000) + "}");
  CHECK_THROWS_WITH(load_config(deep), Catch::Contains("deep.json' nests arrays/objects deeper than 512"));
  const std::string overflow = dir.str() + "/overflow.json";
  write(overflow, "{\"model\": {\"x\": 1e400}}");
  CHECK_THROWS_WITH(load_config(overflow), Catch::Contains("overflow.json' is not valid JSON") &&
                                               Catch::Contains("number overflow"));
  CHECK_THROWS_WITH(load_config(dir.str()), Catch::Contains("is a directory"));
  Json cfg = Json::parse(R"({"a": {"b": 1}})");
  CHECK_THROWS_WITH(apply_config_override(cfg, "a.b=" + nested_array(100000)), Catch::Contains("deeper than 512"));
  apply_config_override(cfg, "a.b=1e400");  // not a number JSON can hold: kept as text, as other non-JSON values
  CHECK(cfg["a"]["b"] == "1e400");
  const Json node = Json::parse(R"({"interval": 0, "big": 18446744073709551615})");
  const ConfigNode hooks(node, "default_hooks.logger");
  CHECK_THROWS_WITH(hooks.get_int("interval", 50, 1, INT64_MAX),
                    Catch::Equals("config default_hooks.logger.interval: expected an integer >= 1, got 0"));
  CHECK_THROWS_WITH(hooks["big"].as_int(), Catch::Contains("expected an integer below 2^63"));
  CHECK(hooks.get_int("missing", 7, 1, 10) == 7);
}

TEST_CASE("polygons far outside the image: bounded work, pycocotools' result where it is defined", "[robust][data]") {
  const int64_t H = 64, W = 64;
  // A rectangle covering the image, with vertices at 1e9 / 1e31 (double->int overflow and a 2^31
  // point walk before) and near the image (within the margin: pycocotools' own code path).
  const std::vector<double> near = {-10, -10, 74, -10, 74, 74, -10, 74};
  const data::Rle expected = data::rle_from_polygon(near, H, W);
  CHECK(data::rle_area(expected) == H * W);
  for (const double far : {1e7, 1e9, 1e31}) {
    INFO(far);
    const std::vector<double> poly = {-far, -far, far, -far, far, far, -far, far};
    CHECK(data::rle_from_polygon(poly, H, W) == expected);
  }
  // A triangle with one far vertex: it is cut at x = 64 + 1025 (the margin is max(side, 1024) + 1),
  // where its two long edges are 3.5e-5 pixels from y = 0 and y = 64; on the 1/5-pixel grid that
  // is the rectangle x in [2, 1089], which pycocotools' own path rasterises (all vertices in range).
  const data::Rle t = data::rle_from_polygon(std::vector<double>{2, 0, 2, 64, 1e9, 32}, H, W);
  CHECK(t == data::rle_from_polygon(std::vector<double>{2, 0, 2, 64, 1089, 64, 1089, 0}, H, W));
  CHECK(data::rle_area(t) > 0);
  // A box far outside (rle_from_box goes through the same path) and non-finite vertices.
  CHECK(data::rle_area(data::rle_from_box({1e30, 1e30, 1e30, 1e30}, H, W)) == 0);
  CHECK_THROWS_WITH(data::rle_from_polygon(std::vector<double>{0, 0, NAN, 3, 4, 4}, H, W),
                    Catch::Contains("vertex 1") && Catch::Contains("not finite"));
}

TEST_CASE("zero RPN proposals give zero detections; a negative max_per_img names the key", "[robust][detection]") {
  Json cfg = load_config(std::string(GNDET_SOURCE_DIR) + "/configs/tests/mask-rcnn_tiny_gn.json");
  const int64_t S = 64;
  Generator gen(0);
  const Tensor images = randn({2, 3, S, S}, gen);
  std::vector<ImageInfo> infos(2);
  for (int i = 0; i < 2; ++i) infos[i] = {i, S, S, S, S, S, S, 1.0, 1.0, false};
  SECTION("max_per_img = 0") { cfg["model"]["test_cfg"]["rpn"]["max_per_img"] = 0; }
  SECTION("min_bbox_size larger than the image") { cfg["model"]["test_cfg"]["rpn"]["min_bbox_size"] = 1000; }
  TwoStageDetector det(cfg["model"], gen);
  det.eval();
  const std::vector<Detections> d = det.predict(images, infos);
  REQUIRE(d.size() == 2);
  for (const Detections& x : d) {
    CHECK(x.boxes.shape() == Shape{0, 4});
    CHECK(x.scores.numel() == 0);
    CHECK(x.labels.numel() == 0);
    CHECK(x.masks.shape() == Shape{0, S, S});
  }
}

TEST_CASE("a negative RPN max_per_img is refused naming the key, when the model is built", "[robust][detection]") {
  Json cfg = load_config(std::string(GNDET_SOURCE_DIR) + "/configs/tests/mask-rcnn_tiny_gn.json");
  cfg["model"]["test_cfg"]["rpn"]["max_per_img"] = -1;
  Generator gen(0);
  CHECK_THROWS_WITH(TwoStageDetector(cfg["model"], gen),
                    Catch::Equals("config model.test_cfg.rpn.max_per_img: expected an integer >= 0, got -1"));
}

TEST_CASE("train_cfg and test_cfg: unknown keys and unsupported values are refused when the model is built",
          "[robust][detection][config]") {
  const Json base = load_config(std::string(GNDET_SOURCE_DIR) + "/configs/tests/mask-rcnn_tiny_gn.json");
  Generator gen(0);
  auto error_of = [&](const std::function<void(Json&)>& change) {
    Json cfg = base;
    change(cfg["model"]);
    try {
      TwoStageDetector det(cfg["model"], gen);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_THAT(error_of([](Json& m) { m["test_cfg"]["rcnn"]["score_th"] = 0.1; }),
             Catch::Contains("config model.test_cfg.rcnn: unknown key \"score_th\"") && Catch::Contains("score_thr"));
  CHECK_THAT(error_of([](Json& m) { m["train_cfg"]["rpn"]["assigner"]["pos_iou_th"] = 0.7; }),
             Catch::Contains("config model.train_cfg.rpn.assigner: unknown key \"pos_iou_th\""));
  CHECK_THAT(error_of([](Json& m) { m["train_cfg"]["rcnn"]["sampler"]["number"] = 512; }),
             Catch::Contains("config model.train_cfg.rcnn.sampler: unknown key \"number\""));
  CHECK_THAT(error_of([](Json& m) { m["train_cfg"]["rpn_proposal"]["nms"]["iou_thr"] = 0.7; }),
             Catch::Contains("config model.train_cfg.rpn_proposal.nms: unknown key \"iou_thr\""));
  CHECK_THAT(error_of([](Json& m) { m["train_cfg"]["rpn"]["pos_weight"] = 2.0; }),
             Catch::Contains("model.train_cfg.rpn.pos_weight: only -1"));
  CHECK_THAT(error_of([](Json& m) { m["test_cfg"]["rcnn"]["max_per_img"] = -5; }),
             Catch::Contains("config model.test_cfg.rcnn.max_per_img: expected an integer >= 0, got -5"));
  CHECK(error_of([](Json&) {}) == "no error");
}

TEST_CASE("state-dict key lists escape invisible bytes", "[robust][nn]") {
  nn::LoadReport r;
  r.missing = {"conv.weight"};
  r.unexpected = {std::string("conv.weight\0", 12), "conv\xe2\x80\x8b.bias"};
  CHECK(r.str() == "missing keys (1): conv.weight; unexpected keys (2): conv.weight\\x00, conv\\xe2\\x80\\x8b.bias");
  CHECK(printable("a\\b\x7f") == "a\\\\b\\x7f");
}

TEST_CASE("corrupt images always give a reason; directories are named", "[robust][data]") {
  // stb sets its failure reason to "" while reading a GIF header and fails later without setting
  // another one; the message said "cannot decode image 'x': " with nothing after it.
  const std::string gif = std::string("GIF89a") + std::string("\x10\x00\x10\x00\x80\x00\x00", 7);
  try {
    data::decode_image(gif, "t.gif");
    FAIL("decoded a truncated GIF");
  } catch (const Error& e) {
    const std::string m = e.what();
    INFO(m);
    CHECK(m.find("cannot decode image 't.gif': ") == 0);
    CHECK(m.find("t.gif':  ") == std::string::npos);
    CHECK(m.find("t.gif': (") == std::string::npos);
  }
  // A PNG header declaring 16384 x 16384 pixels is refused before stb allocates 768 MiB.
  const unsigned char ihdr[] = {0x89, 'P', 'N', 'G', 13, 10, 26, 10, 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0x40,
                                0x00, 0, 0, 0x40, 0x00, 8, 2, 0, 0, 0, 0, 0, 0, 0};
  CHECK_THROWS_WITH(data::decode_image(std::string(reinterpret_cast<const char*>(ihdr), sizeof ihdr), "big.png"),
                    Catch::Contains("big.png") && Catch::Contains("16384 x 16384 pixels is more than"));
  CHECK_THROWS_WITH(data::read_image(std::filesystem::temp_directory_path().string()), Catch::Contains("is a directory"));
  // PNM (and PSD, PIC, HDR) support is compiled out: fuzzing found a signed overflow (UB) in stb
  // 2.27's PNM header parser on a long maxval (tests/fuzz/reproducers/image/).
  CHECK_THROWS_WITH(data::decode_image("P6\n4 3\n" + std::string(70, '5') + "\n", "x.ppm"),
                    Catch::StartsWith("cannot decode image 'x.ppm': "));
  // Found by fuzzing stb 2.27: a DHT segment with more than 256 codes wrote past a Huffman table
  // (UBSan: index 257 out of bounds), and a PNG IDAT chunk was allocated at its declared length
  // (1.3 GB for a 111-byte file). Both are refused before stb reads them.
  const std::string repro = std::string(GNDET_SOURCE_DIR) + "/tests/fuzz/reproducers/image/";
  auto file_bytes = [](const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  CHECK_THROWS_WITH(data::decode_image(file_bytes(repro + "jpeg_dht_more_than_256_codes.jpg"), "a.jpg"),
                    Catch::StartsWith("cannot decode image 'a.jpg': corrupt JPEG (a Huffman table declares more than 256 codes"));
  // stb skips 0xFF fill bytes before the SOI marker: such a file is a JPEG to it, and to the check.
  CHECK_THROWS_WITH(data::decode_image(file_bytes(repro + "jpeg_fill_bytes_before_soi_then_bad_dht.jpg"), "c.jpg"),
                    Catch::Contains("a Huffman table declares more than 256 codes"));
  CHECK_THROWS_WITH(data::decode_image(file_bytes(repro + "png_idat_length_past_end.png"), "b.png"),
                    Catch::Contains("a chunk is longer than the rest of the file"));
  // A scan using an AC table no DHT defined: stb decoded with uninitialised tables (its assert fired).
  CHECK_THROWS_WITH(data::decode_image(file_bytes(repro + "jpeg_scan_uses_undefined_huffman_table.jpg"), "f.jpg"),
                    Catch::Contains("a scan uses one that was never defined"));
  // A top-down BMP's negative height passed the pixel limit (13824 x -32770): 1.36 GB allocated.
  CHECK_THROWS_WITH(data::decode_image(file_bytes(repro + "bmp_negative_height_13824x32770.bmp"), "g.bmp"),
                    Catch::Contains("13824 x -32770 pixels"));
  // An empty first IDAT chunk made stb memcpy 0 bytes to a null pointer (UB).
  CHECK_THROWS_WITH(data::decode_image(file_bytes(repro + "png_empty_first_idat.png"), "e.png"),
                    Catch::Contains("the first IDAT is empty"));
  // Decoders read zeros past the end: 62 bytes of TGA decoded 17486 x 1536 pixels (28 s under ASan).
  CHECK_THROWS_WITH(data::decode_image(file_bytes(repro + "tga_62_bytes_declaring_17486x1536.tga"), "d.tga"),
                    Catch::Contains("pixels from only 62 bytes (more than 1000 pixels per byte)"));
  // Valid files still decode (the checks walk them without refusing anything).
  for (const char* seed : {"rgb.png", "rgba.png", "grey.png", "rgb.jpg", "grey.jpg", "rgb.bmp", "one.gif", "rgb.tga"}) {
    INFO(seed);
    CHECK(data::decode_image(file_bytes(std::string(GNDET_SOURCE_DIR) + "/tests/fuzz/corpus/image/" + seed), seed).dim() == 3);
  }
}

TEST_CASE("command-line numbers are checked whole and in range", "[robust][apps]") {
  auto parse = [](const std::vector<std::string>& args) {
    auto p = std::make_unique<app::ArgParser>("gndet infer", "");
    p->option("--display-scale", "F", "", "1").option("--score-thr", "T", "", "0.3");
    p->parse(args);
    return p;
  };
  // 4294967297 was truncated to 1 by a cast to int, 2147483648 reported as -2147483648.
  CHECK_THROWS_WITH(parse({"--display-scale", "4294967297"})->get_int("--display-scale", 1, 16),
                    Catch::Equals("gndet infer: --display-scale must be 1..16, got 4294967297"));
  CHECK_THROWS_WITH(parse({"--display-scale", "99999999999999999999"})->get_int("--display-scale", 1, 16),
                    Catch::Contains("expects an integer, got '99999999999999999999'"));
  CHECK(parse({"--display-scale", "16"})->get_int("--display-scale", 1, 16) == 16);
  for (const char* bad : {"nan", "inf", "-nan", "0.3x"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse({"--score-thr", bad})->get_double("--score-thr", 0.0, 1.0), app::UsageError);
  }
  CHECK_THROWS_WITH(parse({"--score-thr", "1.5"})->get_double("--score-thr", 0.0, 1.0),
                    Catch::Equals("gndet infer: --score-thr must be in 0..1, got 1.5"));
  CHECK(parse({})->get_double("--score-thr", 0.0, 1.0) == 0.3);
}
