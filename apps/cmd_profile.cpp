// gndet profile: where the time of a training or inference iteration goes, op by op and module by
// module (autograd/profiler.h), as tables and a Chrome trace.
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/experiment.h"
#include "apps/profile_session.h"
#include "apps/synthetic.h"
#include "autograd/trace.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "tensor/backend.h"
#include "tensor/grad_mode.h"

namespace gndet::app {
namespace {

namespace fs = std::filesystem;

// "800x1333" -> {800, 1333}, each rounded up to a multiple of 32 (the configs' pad_size_divisor).
std::pair<int64_t, int64_t> parse_size(const std::string& s) {
  const size_t x = s.find('x');
  int64_t h = 0, w = 0;
  try {
    if (x != std::string::npos) h = std::stoll(s.substr(0, x)), w = std::stoll(s.substr(x + 1));
  } catch (const std::exception&) {
    h = w = 0;
  }
  if (h < 32 || w < 32 || h > 8192 || w > 8192) {
    throw UsageError("gndet profile --size: expected HEIGHTxWIDTH between 32 and 8192, got '" + s + "'");
  }
  return {(h + 31) / 32 * 32, (w + 31) / 32 * 32};
}

int run_profile(const Args& args) {
  ArgParser p("gndet profile",
              "Profiles iterations of CONFIG's model on a synthetic input (one image of random pixels with two\n"
              "objects; what is timed depends on the shapes, not the pixels): every kernel call, every backward\n"
              "node and every module forward, with self and total time, bytes allocated and GFLOP/s of\n"
              "convolutions and GEMMs. Prints tables per op, per module and per phase (forward / backward) and\n"
              "writes OUT/profile.txt and OUT/trace.json (open it in https://ui.perfetto.dev or chrome://tracing).\n"
              "A training iteration is forward, losses, backward and the SGD step; an inference iteration is\n"
              "predict() under no-grad. On a GPU every kernel is followed by a device synchronisation so that\n"
              "its time is its own.");
  p.positional("CONFIG", "a model config")
      .option("--mode", "MODE", "train or infer", "train")
      .option("--checkpoint", "FILE", "weights to load (else the config's initialisation)")
      .option("--iters", "N", "iterations profiled", "3")
      .option("--warmup", "N", "iterations run first, not profiled", "1")
      .option("--size", "HxW", "the synthetic image (rounded up to multiples of 32)", "800x1344")
      .option("--device", "DEVICE", "cpu, cuda or cuda:N", "cpu")
      .option("--top", "N", "rows per table", "25")
      .option("--out", "DIR", "where profile.txt and trace.json go", "work_dirs/profile")
      .multi("--cfg-options", "KEY=VALUE", "override config entries")
      .example("gndet profile configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json --mode infer --iters 2")
      .example("gndet profile configs/tests/mask-rcnn_tiny_gn.json --size 256x320 --out work_dirs/tiny_profile");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  const std::string mode = p.get("--mode");
  if (mode != "train" && mode != "infer") throw UsageError("gndet profile --mode: expected train or infer, got '" + mode + "'");
  const int iters = static_cast<int>(p.get_int("--iters", 1, 1000));
  const int warmup = static_cast<int>(p.get_int("--warmup", 0, 1000));
  const int top = static_cast<int>(p.get_int("--top", 1, 1000));
  const auto [height, width] = parse_size(p.get("--size"));
  const std::string out = p.get("--out");

  const Json cfg = load_run_config(p.get("CONFIG"), p.list("--cfg-options"));
  const Device device = choose_device(p.get("--device"));
  std::string note;
  auto model = build_model(cfg, 0, kCPU, &note);
  if (!note.empty()) std::printf("%s\n", note.c_str());
  if (!p.get("--checkpoint").empty()) {
    const nn::LoadReport r = model->load_state_dict(nn::load_state_dict_from_file(p.get("--checkpoint")), false);
    GNDET_CHECK(r.ok(), "checkpoint '", p.get("--checkpoint"), "' does not match the model of '", p.get("CONFIG"),
                "': ", r.str());
  }
  model->to(device);
  SyntheticBatch batch = synthetic_batch(height, width, model->num_classes(), model->with_mask());
  batch.images = batch.images.to(device);
  for (ImageTargets& t : batch.targets) {
    t.boxes = t.boxes.to(device);
    t.labels = t.labels.to(device);
    if (t.masks.defined()) t.masks = t.masks.to(device);
  }

  nn::SGDOptions sgd;
  sgd.lr = 1e-4;  // small: the weights should not run away over a few profiled steps
  sgd.momentum = 0.9;
  sgd.weight_decay = 1e-4;
  nn::SGD optimizer(nn::make_param_groups(*model, {}), sgd);
  Generator gen(1);
  auto iteration = [&]() {
    if (mode == "train") {
      model->train();
      optimizer.zero_grad();
      total_loss(model->loss(batch.images, batch.targets, batch.infos, gen)).backward();
      autograd::ScopeGuard scope("optimizer.step");  // its kernels get a row in the module table
      optimizer.step();
    } else {
      model->eval();
      autograd::NoGradGuard no_grad;
      (void)model->predict(batch.images, batch.infos);
    }
    if (device.is_cuda()) cuda::synchronize(device.index);
  };
  for (int i = 0; i < warmup; ++i) iteration();

  ProfileSession session(*model);
  for (int i = 0; i < iters; ++i) {
    session.step_begin(mode + " iteration " + std::to_string(i + 1));
    iteration();
    session.step_end();
  }
  const std::string title = fs::path(p.get("CONFIG")).filename().string() + ", " + mode + ", one " +
                            std::to_string(height) + "x" + std::to_string(width) + " image, " + describe(device) + ", " +
                            std::to_string(iters) + " iteration(s) after " + std::to_string(warmup) + " warm-up";
  std::cout << session.finish(out, title, top);
  return 0;
}

}  // namespace

GNDET_COMMAND("profile", "time the ops and modules of a training or inference iteration (tables, Chrome trace)",
              run_profile);

}  // namespace gndet::app
