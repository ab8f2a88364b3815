// The synthetic shapes dataset, and CocoDataset + DataLoader reading it from disk.
#include <filesystem>

#include "data/coco_dataset.h"
#include "data/shapes.h"
#include "tensor/safetensors.h"
#include "tests/support.h"

using namespace gndet;
using namespace gndet::data;

namespace {

std::string temp_dir(const std::string& name) {
  const std::string dir = std::filesystem::temp_directory_path() / ("gndet_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace

TEST_CASE("shapes images: deterministic, masks are the visible pixels, nothing painted is unannotated", "[data]") {
  const int64_t S = 64;
  for (int64_t index = 0; index < 40; ++index) {
    INFO("image " << index);
    const ShapesImage a = render_shapes_image(5, 0, index, S), b = render_shapes_image(5, 0, index, S);
    CHECK(a.image.to_vector<uint8_t>() == b.image.to_vector<uint8_t>());
    REQUIRE(a.annotations.size() == b.annotations.size());
    REQUIRE(a.annotations.size() >= 1);
    REQUIRE(a.annotations.size() <= 4);
    const std::vector<uint8_t> px = a.image.to_vector<uint8_t>();
    std::vector<int> owner(static_cast<size_t>(S * S), -1);
    for (size_t k = 0; k < a.annotations.size(); ++k) {
      const CocoAnnotation& ann = a.annotations[k];
      CHECK(ann.category_id >= 1);
      CHECK(ann.category_id <= 3);
      REQUIRE(ann.segmentation.has_value());
      const Rle rle = segmentation_to_rle(*ann.segmentation, S, S);
      CHECK(rle_area(rle) == ann.area);
      CHECK(rle_to_box(rle) == ann.bbox);
      CHECK(ann.area >= 0.3 * (S / 8.0) * (S / 8.0) * 0.5);  // 30% of at least the smallest triangle
      const Tensor m = rle_decode(rle);
      const std::vector<uint8_t> mv = m.to_vector<uint8_t>();
      for (int64_t p = 0; p < S * S; ++p) {
        if (!mv[static_cast<size_t>(p)]) continue;
        CHECK(owner[static_cast<size_t>(p)] == -1);  // visible masks never overlap
        owner[static_cast<size_t>(p)] = static_cast<int>(k);
      }
    }
    // Per row, every pixel outside the masks has the background colour of that row, and every
    // pixel inside differs from it (the shapes contrast with the background).
    for (int64_t y = 0; y < S; ++y) {
      int64_t bg = -1;
      for (int64_t x = 0; x < S && bg < 0; ++x) {
        if (owner[static_cast<size_t>(y * S + x)] < 0) bg = y * S + x;
      }
      if (bg < 0) continue;
      for (int64_t x = 0; x < S; ++x) {
        const int64_t p = y * S + x;
        bool same = true;
        for (int c = 0; c < 3; ++c)
          same = same && px[static_cast<size_t>(p * 3 + c)] == px[static_cast<size_t>(bg * 3 + c)];
        CHECK(same == (owner[static_cast<size_t>(p)] < 0));
      }
    }
  }
  CHECK(render_shapes_image(6, 0, 0, S).image.to_vector<uint8_t>() !=
        render_shapes_image(5, 0, 0, S).image.to_vector<uint8_t>());
}

TEST_CASE("make-shapes writes a COCO dataset that CocoDataset and DataLoader read back", "[data]") {
  const std::string dir = temp_dir("shapes");
  ShapesOptions o;
  o.out_dir = dir;
  o.num_train = 12;
  o.num_val = 4;
  o.size = 64;
  o.seed = 3;
  const ShapesSummary sum = make_shapes_dataset(o);
  CHECK(sum.train_images == 12);
  CHECK(sum.val_images == 4);
  const CocoInstances val = CocoInstances::load(dir + "/annotations/val.json");
  CHECK(val.images().size() == 4);
  CHECK(static_cast<int64_t>(val.annotations().size()) == sum.val_instances);
  CHECK(val.sorted_category_ids() == std::vector<int64_t>{1, 2, 3});
  CHECK(val.category_name(2) == "triangle");
  CHECK(std::filesystem::exists(dir + "/val/000004.png"));

  const Json cfg = Json::parse(R"({"type": "CocoDataset", "data_root": ")" + dir + R"(/",
      "ann_file": "annotations/train.json", "data_prefix": {"img": "train/"},
      "filter_cfg": {"filter_empty_gt": true, "min_size": 32},
      "pipeline": [{"type": "LoadImageFromFile"}, {"type": "LoadAnnotations", "with_bbox": true, "with_mask": true},
                   {"type": "Resize", "scale": [160, 96], "keep_ratio": true}, {"type": "RandomFlip", "prob": 0.5},
                   {"type": "Normalize", "mean": [123.675, 116.28, 103.53], "std": [58.395, 57.12, 57.375], "to_rgb": true},
                   {"type": "Pad", "size_divisor": 32}, {"type": "PackDetInputs"}]})");
  auto ds = CocoDataset::from_config(cfg, "shapes config");
  REQUIRE(ds->size() == 12);
  CHECK(ds->loads_masks());
  const Sample s = ds->get(0);
  CHECK(s.meta.ori_shape == std::array<int64_t, 2>{64, 64});
  CHECK(s.meta.img_shape == std::array<int64_t, 2>{96, 96});  // min(160 / 64, 96 / 64) = 1.5
  CHECK(s.meta.pad_shape == std::array<int64_t, 2>{96, 96});
  CHECK(s.image.shape() == Shape{96, 96, 3});
  CHECK(s.image.dtype() == kFloat32);
  const int64_t K = s.gt_boxes.size(0);
  CHECK(K >= 1);
  CHECK(s.gt_labels.shape() == Shape{K});
  CHECK(s.gt_masks.shape() == Shape{K, 96, 96});
  CHECK(s.meta.image_id == ds->coco().images()[static_cast<size_t>(ds->image_index(0))].id);

  LoaderOptions lo;
  lo.batch_size = 4;
  lo.num_workers = 2;
  lo.seed = 1;
  DataLoader loader(ds, lo);
  loader.start_epoch(0);
  int64_t batches = 0;
  while (auto b = loader.next()) {
    CHECK(b->images.shape() == Shape{4, 3, 96, 96});
    CHECK(b->gt_masks.size() == 4);
    ++batches;
  }
  CHECK(batches == 3);

  // metainfo classes must be the file's categories
  Json with_classes = cfg;
  with_classes["metainfo"] = {{"classes", {"square", "circle", "triangle"}}};
  CHECK(CocoDataset::from_config(with_classes, "cfg")->size() == 12);
  with_classes["metainfo"]["classes"] = {"circle"};
  CHECK_THROWS_WITH(CocoDataset::from_config(with_classes, "cfg"),
                    Catch::Contains("dataset.metainfo.classes") && Catch::Contains("square, circle, triangle"));
  Json unknown = cfg;
  unknown["ann_files"] = "x";
  CHECK_THROWS_WITH(CocoDataset::from_config(unknown, "cfg"), Catch::Contains("unknown dataset argument 'ann_files'"));

  // a corrupt image file is reported through the loader, naming the file
  write_file_atomic(dir + "/train/000002.png", "not a png");
  lo.shuffle = false;
  DataLoader broken(ds, lo);
  broken.start_epoch(0);
  CHECK_THROWS_WITH(broken.next(), Catch::Contains("000002.png") && Catch::Contains("cannot decode image"));
  std::filesystem::remove_all(dir);
}
