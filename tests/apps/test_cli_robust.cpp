// The CLI on malformed input (issue 16): each case ends in exit code 1 and exactly one "error:"
// line naming the file / key (argument errors: exit code 2 and one "usage error:" line, as every
// other bad argument), or in the correct result (zero detections).
#include <fstream>
#include <nlohmann/json.hpp>

#include "tensor/config.h"
#include "detection/detector.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"
#include "tests/apps/cli_util.h"
#include "tests/support.h"

using namespace gndet;
using test::run_gndet;

namespace {

const std::string& kConfig = test::kTinyShapesConfig;
using test::data_options;
using test::derived_config;

int count_lines_starting(const std::string& text, const std::string& prefix) {
  int n = 0;
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = text.find('\n', at);
    if (text.compare(at, prefix.size(), prefix) == 0) ++n;
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return n;
}

// Exit code 1, one "error:" line, containing every `needle`.
void check_error(const test::Run& r, std::initializer_list<std::string> needles) {
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(count_lines_starting(r.output, "error: ") == 1);
  for (const std::string& n : needles) CHECK(r.output.find(n) != std::string::npos);
}

void check_usage_error(const test::Run& r, const std::string& needle) {
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(count_lines_starting(r.output, "usage error: ") == 1);
  CHECK(r.output.find(needle) != std::string::npos);
}


}  // namespace

TEST_CASE("CLI: malformed configs end in one error line naming the file or key", "[robust][apps][cli]") {
  test::TempDir dir("cli_robust_cfg");
  const std::string data = dir.str() + "/data";
  REQUIRE(run_gndet("make-shapes --out " + data + " --train 4 --val 2 --size 64 --seed 1").exit_code == 0);
  const std::string opts = " --work-dir " + dir.str() + "/work" + data_options(data);  // ends in --cfg-options

  // 100000 levels in a key nobody reads: the resolved-config dump used to overflow the stack.
  const std::string deep = derived_config(dir, "deep", "\"_notes\": " + std::string(100000, '[') + std::string(100000, ']'));
  check_error(run_gndet("train " + deep + opts), {"deep.json' nests arrays/objects deeper than 512 levels"});

  // Zero intervals divided by zero (SIGFPE); negative ones were not rejected.
  check_error(run_gndet("train " + kConfig + opts + " default_hooks.logger.interval=0"),
              {"config default_hooks.logger.interval: expected an integer >= 1, got 0"});
  check_error(run_gndet("train " + kConfig + opts + " train_cfg.val_interval=-2"),
              {"config train_cfg.val_interval: expected an integer >= 1, got -2"});
  const std::string ckpt0 = derived_config(dir, "ckpt0", R"("default_hooks": {"checkpoint": {"interval": 0}})");
  check_error(run_gndet("train " + ckpt0 + opts), {"config default_hooks.checkpoint.interval: expected an integer >= 1, got 0"});
  const std::string hook5 = derived_config(dir, "hook5", R"("default_hooks": {"logger": 5})");
  check_error(run_gndet("train " + hook5 + opts), {"config default_hooks.logger: expected an object, got 5"});

  // Wrong types were nlohmann's type_error.302 / .306 without a file or key.
  check_error(run_gndet("train " + kConfig + opts + " default_hooks.logger.interval=\\\"often\\\""),
              {"config default_hooks.logger.interval: expected an integer, got \"often\""});
  const std::string scale = derived_config(dir, "scale", R"("auto_scale_lr": {"enable": "yes", "base_batch_size": 16})");
  check_error(run_gndet("train " + scale + opts), {"config auto_scale_lr.enable: expected true or false, got \"yes\""});
  const std::string base0 = derived_config(dir, "base0", R"("auto_scale_lr": {"enable": true, "base_batch_size": 0})");
  check_error(run_gndet("train " + base0 + opts), {"config auto_scale_lr.base_batch_size: expected an integer >= 1, got 0"});

  // 1e400 was "[json.exception.out_of_range.406] number overflow" without the file.
  const std::string big = derived_config(dir, "big", R"("_notes": 1e400)");
  check_error(run_gndet("train " + big + opts), {"big.json' is not valid JSON", "number overflow"});

  // A directory was "basic_filebuf::underflow".
  check_error(run_gndet("train " + dir.str() + opts), {"is a directory"});
}

TEST_CASE("CLI: a bad value anywhere in the config fails before any data is read, naming the key",
          "[robust][apps][cli][config]") {
  test::TempDir dir("cli_robust_early");
  // No data at all: reading it would fail on the annotation file, so an error naming the key
  // shows that the whole config was checked first.
  const std::string opts = " --work-dir " + dir.str() + "/work" + data_options(dir.str() + "/no_data");
  const std::string optimizer = derived_config(dir, "optimizer", R"("optim_wrapper": {"optimizer": {"momentun": 0.9}})");
  check_error(run_gndet("train " + optimizer + opts), {"config optim_wrapper.optimizer: unknown key \"momentun\""});
  const std::string clip = derived_config(dir, "clip", R"("optim_wrapper": {"clip_grad": {"max_norm": 10, "norm_type": 1}})");
  check_error(run_gndet("train " + clip + opts), {"optim_wrapper.clip_grad.norm_type: only 2"});
  const std::string loop = derived_config(dir, "loop", R"("train_cfg": {"val_begin": 3})");
  check_error(run_gndet("train " + loop + opts), {"config train_cfg: unknown key \"val_begin\""});
  check_error(run_gndet("train " + kConfig + opts + " train_cfg.max_epochs=0"),
              {"config train_cfg.max_epochs: expected an integer >= 1, got 0"});
  const std::string hook = derived_config(dir, "hook", R"("default_hooks": {"logger": {"log_metric_by_epoch": true}})");
  check_error(run_gndet("train " + hook + opts), {"config default_hooks.logger: unknown key \"log_metric_by_epoch\""});
  const std::string hook_name = derived_config(dir, "hook_name", R"("default_hooks": {"early_stopping": {}})");
  check_error(run_gndet("train " + hook_name + opts), {"config default_hooks: unknown key \"early_stopping\""});
  check_error(run_gndet("train " + kConfig + opts + " param_scheduler.1.gamma=\\\"half\\\""),
              {"param_scheduler[1].gamma"});
  check_error(run_gndet("train " + kConfig + opts + " train_dataloader.dataset.pipeline.0.type=LoadImageFromWeb"),
              {"train_dataloader.dataset", "LoadImageFromWeb"});
  check_error(run_gndet("train " + kConfig + opts + " val_dataloader.num_workers=-1"), {"val_dataloader.num_workers"});
  // The same config with the data present trains (the checks do not reject what is valid):
  // covered by the CLI chain test.
}

TEST_CASE("CLI: malformed results files and arguments", "[robust][apps][cli]") {
  test::TempDir dir("cli_robust_args");
  const std::string data = dir.str() + "/data";
  REQUIRE(run_gndet("make-shapes --out " + data + " --train 1 --val 2 --size 64 --seed 1").exit_code == 0);
  const std::string deep = dir.str() + "/deep.json";
  std::ofstream(deep) << "[{\"image_id\": 1, \"category_id\": 1, \"score\": 0.5, \"bbox\": " << std::string(100000, '[')
                      << std::string(100000, ']') << "}]";
  check_error(run_gndet("coco-eval --gt " + data + "/annotations/val.json --dt " + deep + " --iou-type bbox"),
              {"deep.json' nests arrays/objects deeper than 512 levels"});

  // --display-scale was read as 64 bits and cast to int; --score-thr nan was accepted.
  check_usage_error(run_gndet("infer a.json b.safetensors c.png --display-scale 4294967297"),
                    "--display-scale must be 1..16, got 4294967297");
  check_usage_error(run_gndet("infer a.json b.safetensors c.png --score-thr nan"),
                    "--score-thr expects a finite number, got 'nan'");
  // make-shapes allocated every image up front (std::bad_alloc).
  check_usage_error(run_gndet("make-shapes --out " + dir.str() + "/s --train 2147483647"),
                    "--train must be 0..9999999, got 2147483647");
}

TEST_CASE("CLI: zero RPN proposals give zero detections in eval and infer", "[robust][apps][cli][detection]") {
  test::TempDir dir("cli_robust_zero");
  const std::string data = dir.str() + "/data";
  REQUIRE(run_gndet("make-shapes --out " + data + " --train 1 --val 2 --size 64 --seed 1").exit_code == 0);
  // Untrained weights are enough: with max_per_img = 0 nothing reaches the RoI head.
  const std::string weights = dir.str() + "/w.safetensors";
  {
    Generator gen(0);
    TwoStageDetector det(load_config(kConfig)["model"], gen);
    std::map<std::string, Tensor> sd;
    for (const auto& [k, v] : det.state_dict()) sd[k] = v;
    save_safetensors(weights, sd);
  }
  const std::string opts = data_options(data) + " model.test_cfg.rpn.max_per_img=0";
  const test::Run eval = run_gndet("eval " + kConfig + " " + weights + opts + " --out " + dir.str() + "/res");
  INFO(eval.output);
  CHECK(eval.exit_code == 0);
  std::ifstream in(dir.str() + "/res.bbox.json");
  REQUIRE(in.good());
  CHECK(nlohmann::json::parse(in) == nlohmann::json::array());

  const test::Run infer = run_gndet("infer " + kConfig + " " + weights + " " + data + "/val/000001.png --out-dir " +
                                    dir.str() + "/pics" + opts);
  INFO(infer.output);
  CHECK(infer.exit_code == 0);
  std::ifstream pic_json(dir.str() + "/pics/000001.json");
  REQUIRE(pic_json.good());
  CHECK(nlohmann::json::parse(pic_json)["detections"] == nlohmann::json::array());

  check_error(run_gndet("eval " + kConfig + " " + weights + data_options(data) + " model.test_cfg.rpn.max_per_img=-1"),
              {"config model.test_cfg.rpn.max_per_img: expected an integer >= 0, got -1"});
}
