// gndet infer: detections drawn on images, plus their JSON.
#include <filesystem>
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/experiment.h"
#include "apps/predictor.h"
#include "apps/profile_session.h"
#include "apps/visualize.h"
#include "tensor/grad_mode.h"
#include "data/image.h"
#include "data/mask.h"
#include "nn/checkpoint.h"
#include "tensor/backend.h"
#include "tensor/safetensors.h"

namespace gndet::app {
namespace {
namespace fs = std::filesystem;

Json detections_json(const std::string& path, const Detections& d, const std::vector<std::string>& names,
                     double score_thr, int64_t height, int64_t width) {
  Json dets = Json::array();
  const std::vector<float> scores = d.scores.to_vector<float>(), boxes = d.boxes.to_vector<float>();
  const std::vector<int64_t> labels = d.labels.to_vector<int64_t>();
  for (size_t k = 0; k < scores.size(); ++k) {
    if (scores[k] < score_thr) continue;
    Json j = {{"label", labels[k]},
              {"class", names.at(labels[k])},
              {"score", scores[k]},
              {"bbox_xyxy", {boxes[4 * k], boxes[4 * k + 1], boxes[4 * k + 2], boxes[4 * k + 3]}}};
    if (d.masks.defined()) {
      const data::Rle rle = data::rle_encode(d.masks.select(0, static_cast<int64_t>(k)).cpu().contiguous());
      j["segmentation"] = {{"size", {height, width}}, {"counts", data::rle_to_string(rle)}};
    }
    dets.push_back(j);
  }
  return {{"image", path}, {"height", height}, {"width", width}, {"score_thr", score_thr}, {"detections", dets}};
}

int run_infer(const Args& args) {
  ArgParser p("gndet infer",
              "Detects objects in IMAGE files (JPEG or PNG, any size) with CHECKPOINT and writes, for each, a PNG with\n"
              "the masks blended in, boxes, class names and scores, and a JSON of the detections (boxes xyxy in image\n"
              "pixels, masks as COCO compressed RLEs).");
  p.positional("CONFIG", "the config the checkpoint was trained with")
      .positional("CHECKPOINT", "a gndet checkpoint, a safetensors file of weights, or a PyTorch .pth / Detectron .pkl")
      .positional("IMAGE", "images to run on", 1, -1)
      .option("--out-dir", "DIR", "where the pictures and JSON files go", "infer_out")
      .option("--score-thr", "T", "draw and list detections scoring at least T", "0.3")
      .option("--display-scale", "F", "enlarge pictures F times before drawing (readable labels on small images)", "1")
      .option("--grid", "PNG", "also tile all pictures (of one size) into this file, 4 per row")
      .multi("--cfg-options", "KEY=VALUE", "override config entries")
      .option("--device", "DEV", "cpu, cuda, cuda:N or auto", "auto")
      .flag("--profile", "profile each image's predict() after the first one (gndet profile's tables and trace,\n"
            "      in <out-dir>/profile/)")
      .example("gndet infer configs/shapes/mask-rcnn_r18_fpn_gn-all_shapes.json work_dirs/shapes/latest.safetensors "
               "data/shapes/val/000001.png");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  // Scores are probabilities; a NaN threshold would make every comparison false (text and JSON disagreed).
  const double score_thr = p.get_double("--score-thr", 0.0, 1.0);
  const int display_scale = static_cast<int>(p.get_int("--display-scale", 1, 16));
  const Json cfg = load_run_config(p.get("CONFIG"), p.list("--cfg-options"));
  const Predictor predictor(cfg, p.get("CHECKPOINT"), choose_device(p.get("--device")), p.get("CONFIG"));
  const Device device = predictor.device();
  const std::vector<std::string>& names = predictor.class_names();
  const std::string out_dir = p.get("--out-dir");
  fs::create_directories(out_dir);
  std::vector<Tensor> pictures;
  autograd::NoGradGuard no_grad;
  std::unique_ptr<ProfileSession> profile;  // --profile: the first image warms up
  for (const std::string& path : p.list("IMAGE")) {
    if (p.has("--profile") && !pictures.empty() && !profile) {
      profile = std::make_unique<ProfileSession>(predictor.model());
    }
    const Tensor image = data::read_image(path);
    if (profile) profile->step_begin("predict " + path);
    const Detections d = predictor.predict(image);
    if (device.is_cuda()) cuda::synchronize(device.index);
    if (profile) profile->step_end();
    const std::string stem = out_dir + "/" + fs::path(path).stem().string();
    pictures.push_back(draw_detections(image, d, names, score_thr, display_scale));
    data::write_png(stem + ".png", pictures.back());
    write_file_atomic(stem + ".json",
                      detections_json(path, d, names, score_thr, image.size(0), image.size(1)).dump(2) + "\n");
    int64_t shown = 0;
    for (float sc : d.scores.to_vector<float>()) shown += sc >= score_thr ? 1 : 0;
    std::printf("%s: %lld detections >= %.2f -> %s.png, %s.json\n", path.c_str(), static_cast<long long>(shown),
                score_thr, stem.c_str(), stem.c_str());
  }
  if (profile) {
    std::cout << profile->finish(out_dir + "/profile", p.get("CONFIG") + ", infer, " + describe(device));
  } else if (p.has("--profile")) {
    std::printf("--profile: nothing profiled (the first image only warms up; give two or more)\n");
  }
  if (p.has("--grid")) {
    data::write_png(p.get("--grid"), tile_pictures(pictures, 4));
    std::printf("grid of %zu pictures -> %s\n", pictures.size(), p.get("--grid").c_str());
  }
  return 0;
}

}  // namespace

GNDET_COMMAND("infer", "detect objects in images and draw them", run_infer);

}  // namespace gndet::app
