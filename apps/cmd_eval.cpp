// gndet eval: COCO evaluation of a checkpoint on a config's test set.
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/evaluation.h"
#include "nn/checkpoint.h"

namespace gndet::app {
namespace {

int run_eval(const Args& args) {
  ArgParser p("gndet eval",
              "Runs CHECKPOINT on the test set of CONFIG (test_dataloader) and prints pycocotools' tables for bbox\n"
              "(and segm for Mask R-CNN) with mmdetection's copypaste lines.");
  p.positional("CONFIG", "the config the checkpoint was trained with")
      .positional("CHECKPOINT", "a gndet checkpoint, a safetensors file of weights, or a PyTorch .pth / Detectron .pkl")
      .option("--out", "PREFIX", "also write PREFIX.bbox.json and PREFIX.segm.json (COCO results)")
      .multi("--cfg-options", "KEY=VALUE", "override config entries")
      .option("--device", "DEV", "cpu, cuda, cuda:N or auto", "auto")
      .option("--launcher", "L", "none, or mpi: each rank (mpirun -np N) predicts a shard, rank 0 scores", "none")
      .example("gndet eval configs/shapes/mask-rcnn_r18_fpn_gn-all_shapes.json work_dirs/shapes/latest.safetensors")
      .example("gndet eval CONFIG CKPT --out results/run1");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  const auto comm = dist::init_communicator(p.get("--launcher"));
  const Json cfg = load_run_config(p.get("CONFIG"), p.list("--cfg-options"));
  Device device = choose_device(p.get("--device"));
  if (comm->world_size() > 1) device = rank_device(device, comm->info().local_rank);
  const auto dataset = build_dataset(cfg, "test_dataloader");
  auto model = build_model(cfg, 0, kCPU, nullptr);
  const nn::LoadReport r = model->load_state_dict(nn::load_state_dict_from_file(p.get("CHECKPOINT")), /*strict=*/false);
  GNDET_CHECK(r.ok(), "checkpoint '", p.get("CHECKPOINT"), "' does not match the model of '", p.get("CONFIG"), "': ",
              r.str());
  model->to(device);
  const EvalReport report = evaluate_detector(*model, *dataset, loader_options(cfg, "test_dataloader", 0), device,
                                              [&](int64_t done, int64_t total) {
                                                if (!comm->is_main()) return;  // it would land in rank 0's tables
                                                std::fprintf(stderr, "\rinference %lld/%lld", static_cast<long long>(done),
                                                             static_cast<long long>(total));
                                              },
                                              comm.get());
  if (!comm->is_main()) return 0;
  std::fprintf(stderr, "\n");
  std::printf("%lld images, %.3f s per image, %zu detections\n", static_cast<long long>(dataset->size()),
              report.seconds_per_image, report.detections.size());
  for (const auto& [metric, result] : report.results) {
    std::printf("Evaluating %s...\n%s%s\n", metric.c_str(), result.summary.c_str(), copypaste_line(metric, result).c_str());
  }
  if (p.has("--out")) {
    for (const std::string& f : write_results(p.get("--out"), report.detections, model->with_mask())) {
      std::printf("wrote %s\n", f.c_str());
    }
  }
  return 0;
}

}  // namespace

GNDET_COMMAND("eval", "evaluate a checkpoint on a config's test set (COCO AP)", run_eval);

}  // namespace gndet::app
