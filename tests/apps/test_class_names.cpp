// Class names for pictures and JSON (apps/experiment.h): COCO configs name COCO's classes even
// without the annotation files; a config without names falls back to "class N".
#include "apps/experiment.h"
#include "gndet_config.h"
#include "tests/support.h"

using namespace gndet;

TEST_CASE("COCO configs draw COCO class names without the annotation files", "[apps][class_names]") {
  const std::string root = GNDET_SOURCE_DIR;
  for (const char* config : {"/configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json",
                             "/configs/gn+ws/faster-rcnn_r50_fpn_gn-ws-all_1x_coco.json"}) {
    INFO(config);
    Json cfg = load_config(root + config);
    // Point the datasets somewhere empty, so the names cannot come from annotation files.
    for (const char* s : {"train_dataloader", "val_dataloader", "test_dataloader"}) {
      if (cfg.contains(s)) cfg[s]["dataset"]["data_root"] = "/nonexistent/";
    }
    const std::vector<std::string> names = app::class_names(cfg, 80);
    REQUIRE(names.size() == 80);
    CHECK(names[0] == "person");
    CHECK(names[15] == "cat");
    CHECK(names[79] == "toothbrush");
  }
  Json bare = load_config(root + "/configs/tests/mask-rcnn_tiny_gn.json");
  bare.erase("metainfo");
  for (const char* s : {"train_dataloader", "val_dataloader", "test_dataloader"}) {
    if (bare.contains(s)) bare[s]["dataset"]["data_root"] = "/nonexistent/";
  }
  CHECK(app::class_names(bare, 3) == std::vector<std::string>{"class 0", "class 1", "class 2"});
}
