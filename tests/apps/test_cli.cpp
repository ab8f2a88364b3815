// The CLI end to end on a tiny shapes dataset: train -> resume -> eval -> infer, exact resume,
// and the error cases, each of which must give one clear message and a non-zero exit code.
#include <fstream>
#include <nlohmann/json.hpp>

#include "data/image.h"
#include "tensor/safetensors.h"
#include "tests/apps/cli_util.h"
#include "tests/apps/tfevents.h"
#include "tests/support.h"

using namespace gndet;
using test::run_gndet;

namespace {

const std::string& kConfig = test::kTinyShapesConfig;
using test::data_options;
using test::read_train_scalars;

std::string make_data(const test::TempDir& dir) {
  const std::string data = dir.str() + "/data";
  const test::Run r = run_gndet("make-shapes --out " + data + " --train 8 --val 4 --size 64 --seed 3");
  REQUIRE(r.exit_code == 0);
  return data;
}

bool has_tmp_files(const std::string& dir) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (e.path().string().find(".tmp") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("gndet --help ends with its whole GPU line, and prints nothing on stderr without a GPU", "[apps][cli]") {
  // A CUDA build on a machine without a GPU used to print its "CUDA unavailable" notice on stderr
  // in the middle of the last line; it now says why only when a GPU is asked for.
  // run_shell adds 2>&1 after the command: the subshells keep each redirection its own.
  const std::string gndet = std::string(GNDET_BUILD_DIR) + "/apps/gndet";
  const test::Run out = test::run_shell(std::string("(") + gndet + " --help 2>/dev/null)");
  REQUIRE(out.output.size() > 1);
  CHECK(out.output.back() == '\n');
  const std::string last = out.output.substr(out.output.rfind('\n', out.output.size() - 2) + 1);
  CHECK(last.rfind("built with CUDA: ", 0) == 0);
  CHECK(last.find("GPUs visible: ") != std::string::npos);
  const test::Run err = test::run_shell(std::string("(") + gndet + " --help 2>&1 >/dev/null)");
  CHECK(err.output.empty());
}

TEST_CASE("gndet --help lists the commands and every command has help with examples", "[apps][cli]") {
  const test::Run top = run_gndet("--help");
  CHECK(top.exit_code == 0);
  for (const char* cmd : {"train", "eval", "infer", "gradcheck", "graph", "make-shapes", "coco-eval"}) {
    INFO(cmd);
    CHECK(top.output.find(std::string("  ") + cmd) != std::string::npos);
    const test::Run h = run_gndet(std::string(cmd) + " --help");
    CHECK(h.exit_code == 0);
    CHECK(h.output.find("usage: gndet " + std::string(cmd)) != std::string::npos);
  }
  CHECK(run_gndet("train --help").output.find("examples:") != std::string::npos);
  const test::Run unknown = run_gndet("trian");
  CHECK(unknown.exit_code == 2);
  CHECK(unknown.output.find("unknown command 'trian'") != std::string::npos);
  const test::Run bad_opt = run_gndet("train " + kConfig + " --wrok-dir x");
  CHECK(bad_opt.exit_code == 2);
  CHECK(bad_opt.output.find("unknown option '--wrok-dir'") != std::string::npos);
}

TEST_CASE("train -> resume -> eval -> infer on a tiny shapes dataset", "[apps][cli][slow]") {
  test::TempDir dir("cli_chain");
  const std::string data = make_data(dir), work = dir.str() + "/work";
  const std::string opts = data_options(data);

  const test::Run first = run_gndet("train " + kConfig + " --work-dir " + work + opts + " train_cfg.max_epochs=1");
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  CHECK(first.output.find("Epoch(train) [1][4/4]") != std::string::npos);
  CHECK(first.output.find("bbox_mAP_copypaste") != std::string::npos);
  CHECK(first.output.find("segm_mAP_copypaste") != std::string::npos);
  for (const char* f : {"epoch_1.safetensors", "latest.safetensors", "scalars.json", "train.log", "training_curves.png",
                        "mask-rcnn_tiny_shapes.json"}) {
    INFO(f);
    CHECK(std::filesystem::exists(work + "/" + f));
  }
  test::check_training_tfevents(work + "/tf_logs");  // TensorBoard (tests/apps/tfevents.h)

  const test::Run resumed =
      run_gndet("train " + kConfig + " --work-dir " + work + " --resume --profile 2" + opts + " train_cfg.max_epochs=2");
  const test::Run explicit_ckpt = run_gndet("train " + kConfig + " --work-dir " + work + " --resume " + work +
                                            "/epoch_9.safetensors" + opts);
  CHECK(explicit_ckpt.exit_code == 1);
  CHECK(explicit_ckpt.output.find("epoch_9.safetensors' not found") != std::string::npos);
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  CHECK(resumed.output.find("resumed from " + work + "/latest.safetensors at iteration 4") != std::string::npos);
  CHECK(resumed.output.find("Epoch(train) [2][4/4]") != std::string::npos);
  CHECK(std::filesystem::exists(work + "/epoch_2.safetensors"));
  // --profile 2: iterations 6 and 7 (after the first of this run), then training went on.
  CHECK(resumed.output.find("profile of 2 iteration(s):") != std::string::npos);
  CHECK(resumed.output.find("conv2d_forward_kernel") != std::string::npos);
  CHECK(std::filesystem::exists(work + "/profile/trace.json"));

  // A backbone-only weight file, named as ImageNet checkpoints are ("conv1.weight", ...), loads through
  // model.backbone.init_cfg.
  {
    std::map<std::string, Tensor> backbone;
    for (const auto& [name, t] : load_safetensors(work + "/latest.safetensors").tensors) {
      if (name.rfind("model.backbone.", 0) == 0) backbone[name.substr(15)] = t;
    }
    REQUIRE(backbone.count("conv1.weight") == 1);
    save_safetensors(dir.str() + "/backbone.safetensors", backbone);
    const test::Run pretrained =
        run_gndet("train " + kConfig + " --no-validate --work-dir " + dir.str() + "/pre" + opts +
                  " train_cfg.max_epochs=1 'model.backbone.init_cfg={\"type\":\"Pretrained\",\"checkpoint\":\"" +
                  dir.str() + "/backbone.safetensors\"}'");
    INFO(pretrained.output);
    CHECK(pretrained.exit_code == 0);
    CHECK(pretrained.output.find("backbone weights loaded from " + dir.str() + "/backbone.safetensors\n") !=
          std::string::npos);
  }

  const test::Run eval = run_gndet("eval " + kConfig + " " + work + "/latest.safetensors --out " + dir.str() + "/res" + opts);
  INFO(eval.output);
  REQUIRE(eval.exit_code == 0);
  CHECK(eval.output.find(" Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]") != std::string::npos);
  CHECK(eval.output.find("bbox_mAP_copypaste: ") != std::string::npos);
  CHECK(nlohmann::json::parse(std::ifstream(dir.str() + "/res.bbox.json")).is_array());
  CHECK(nlohmann::json::parse(std::ifstream(dir.str() + "/res.segm.json")).is_array());

  // Any size, JPEG or PNG: a 100x75 JPEG made from a validation image.
  const std::string jpeg = dir.str() + "/photo.jpg";
  {
    const Tensor small = data::read_image(data + "/val/000003.png").narrow(0, 0, 50).narrow(1, 0, 60);
    const Tensor wide = small.unsqueeze(1).expand({50, 2, 60, 3}).reshape({100, 60, 3}).narrow(1, 0, 60);
    std::ofstream(jpeg, std::ios::binary) << data::encode_jpeg(wide.contiguous());
  }
  const std::string out = dir.str() + "/pictures";
  const test::Run infer = run_gndet("infer " + kConfig + " " + work + "/latest.safetensors " + data + "/val/000001.png " +
                                    jpeg + " --out-dir " + out + " --score-thr 0.0 --display-scale 2 --grid " +
                                    dir.str() + "/grid.png --profile" + opts);
  INFO(infer.output);
  REQUIRE(infer.exit_code == 0);
  CHECK(infer.output.find("1 step(s)") != std::string::npos);  // --profile: the second image's predict()
  CHECK(std::filesystem::exists(out + "/profile/profile.txt"));
  CHECK(std::filesystem::exists(out + "/000001.png"));
  const nlohmann::json dets = nlohmann::json::parse(std::ifstream(out + "/photo.json"));
  CHECK(dets["width"] == 60);
  CHECK(dets["height"] == 100);
  CHECK(dets["detections"].is_array());
  CHECK(data::read_image(out + "/photo.png").shape() == Shape{200, 120, 3});  // drawn at twice the size
  // Grid cells take the largest picture (200 x 128 after doubling): 200 + 2 margins, 2 x (128 + 4) + 4.
  CHECK(data::read_image(dir.str() + "/grid.png").shape() == Shape{208, 268, 3});
  CHECK_FALSE(has_tmp_files(dir.str()));
}

TEST_CASE("a resumed run repeats the uninterrupted one step for step", "[apps][cli][resume][slow]") {
  test::TempDir dir("cli_resume");
  const std::string data = make_data(dir), opts = data_options(data);
  const std::string straight = dir.str() + "/straight", split = dir.str() + "/split";
  REQUIRE(run_gndet("train " + kConfig + " --no-validate --work-dir " + straight + opts).exit_code == 0);
  REQUIRE(run_gndet("train " + kConfig + " --no-validate --work-dir " + split + opts + " train_cfg.max_epochs=1")
              .exit_code == 0);
  REQUIRE(run_gndet("train " + kConfig + " --no-validate --resume --work-dir " + split + opts).exit_code == 0);

  // Iterations 5-8 (epoch 2) logged by both runs: identical losses, learning rates and gradients.
  const auto a = read_train_scalars(straight + "/scalars.json"), b = read_train_scalars(split + "/scalars.json");
  REQUIRE(a.size() == 8);
  REQUIRE(b.size() == 8);
  for (size_t i = 0; i < 8; ++i) {
    INFO("step " << a[i]["step"]);
    CHECK(a[i]["step"] == b[i]["step"]);
    for (const char* k : {"lr", "loss", "loss_rpn_cls", "loss_rpn_bbox", "loss_cls", "loss_bbox", "loss_mask"}) {
      INFO(k);
      CHECK(a[i][k].get<double>() == b[i][k].get<double>());
    }
  }
  // And the final weights and momentum buffers are bit for bit the same.
  const SafetensorsFile wa = load_safetensors(straight + "/epoch_2.safetensors");
  const SafetensorsFile wb = load_safetensors(split + "/epoch_2.safetensors");
  REQUIRE(wa.tensors.size() == wb.tensors.size());
  for (const auto& [name, t] : wa.tensors) {
    INFO(name);
    CHECK(t.to_vector<double>() == wb.tensors.at(name).to_vector<double>());
  }
}

TEST_CASE("bad inputs give one clear message and a non-zero exit code", "[apps][cli][errors]") {
  test::TempDir dir("cli_errors");
  const std::string data = make_data(dir), opts = data_options(data), work = dir.str() + "/work";

  const test::Run missing = run_gndet("train " + dir.str() + "/nope.json");
  CHECK(missing.exit_code == 1);
  CHECK(missing.output.find("nope.json' not found") != std::string::npos);

  const std::string bad_json = dir.str() + "/bad.json";
  std::ofstream(bad_json) << "{\"model\": {\"type\": ";
  const test::Run malformed = run_gndet("train " + bad_json);
  CHECK(malformed.exit_code == 1);
  CHECK(malformed.output.find("bad.json' is not valid JSON") != std::string::npos);

  const test::Run unknown_key = run_gndet("train " + kConfig + " --work-dir " + work + opts + " model.backbone.dpeth=50");
  CHECK(unknown_key.exit_code == 1);
  CHECK(unknown_key.output.find("unknown config key 'model.backbone.dpeth'") != std::string::npos);

  // A checkpoint of another model (4 classes instead of 3) does not load.
  REQUIRE(run_gndet("train " + kConfig + " --no-validate --work-dir " + work + opts + " train_cfg.max_epochs=1").exit_code == 0);
  const std::string ckpt = work + "/latest.safetensors";
  const test::Run mismatch = run_gndet("eval " + kConfig + " " + ckpt + opts +
                                       " model.roi_head.bbox_head.num_classes=4 model.roi_head.mask_head.num_classes=4");
  CHECK(mismatch.exit_code == 1);
  CHECK(mismatch.output.find("does not match the model") != std::string::npos);
  CHECK(mismatch.output.find("roi_head.bbox_head.fc_cls.weight") != std::string::npos);

  // A truncated checkpoint names the file.
  const std::string cut = dir.str() + "/cut.safetensors";
  std::filesystem::copy_file(ckpt, cut);
  std::filesystem::resize_file(cut, std::filesystem::file_size(cut) / 2);
  const test::Run truncated = run_gndet("eval " + kConfig + " " + cut + opts);
  CHECK(truncated.exit_code == 1);
  CHECK(truncated.output.find("cut.safetensors") != std::string::npos);

  // A corrupt image.
  const std::string junk = dir.str() + "/junk.png";
  std::ofstream(junk) << "\x89PNG not really";
  const test::Run corrupt = run_gndet("infer " + kConfig + " " + ckpt + " " + junk + opts + " --out-dir " + dir.str() + "/o");
  CHECK(corrupt.exit_code == 1);
  CHECK(corrupt.output.find("junk.png") != std::string::npos);

  // A diverging run stops on the first non-finite loss and keeps the last good checkpoint.
  const auto before = std::filesystem::last_write_time(ckpt);
  const test::Run nan = run_gndet("train " + kConfig + " --no-validate --resume --work-dir " + work + opts +
                                  " optim_wrapper.optimizer.lr=1e30");
  CHECK(nan.exit_code == 1);
  CHECK(nan.output.find("stopping: the loss is") != std::string::npos);
  CHECK(std::filesystem::last_write_time(ckpt) == before);
  CHECK_NOTHROW(load_safetensors(ckpt));
  CHECK_FALSE(has_tmp_files(dir.str()));
}
