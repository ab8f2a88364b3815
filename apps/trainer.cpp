#include "apps/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sys/resource.h>

#include "apps/evaluation.h"
#include "apps/plot.h"
#include "apps/train_log.h"
#include "apps/visualize.h"
#include "autograd/grad_mode.h"
#include "nn/checkpoint.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "tensor/cuda_api.h"
#include "tensor/safetensors.h"

namespace gndet::app {
namespace fs = std::filesystem;

std::string default_work_dir(const std::string& config_path) {
  return "work_dirs/" + fs::path(config_path).stem().string();
}

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

nn::LrSchedule schedule_from_config(const Json& cfg, double base_lr, bool* by_epoch_out) {
  nn::LrScheduleOptions o;
  o.base_lr = base_lr;
  o.warmup = nn::WarmupKind::None;
  const ConfigNode list(cfg.at("param_scheduler"), "param_scheduler");
  for (size_t i = 0; i < list.size(); ++i) {
    const ConfigNode s = list.at(i);
    const std::string type = s.type({"LinearLR", "MultiStepLR"});
    if (type == "LinearLR") {
      GNDET_CHECK(!s.get_bool("by_epoch", true) && s.get_int("begin", 0) == 0, "config ", s.path(),
                  ": warmup must be by iteration and begin at 0");
      o.warmup = nn::WarmupKind::Linear;
      o.warmup_factor = s["start_factor"].as_double();
      o.warmup_iters = s["end"].as_int();
    } else {
      o.milestones = s["milestones"].as_int_list();
      o.by_epoch = s.get_bool("by_epoch", true);
      o.gamma = s.get_double("gamma", 0.1);
    }
  }
  *by_epoch_out = o.by_epoch;
  return nn::LrSchedule(o);
}

// mmdetection logs the peak GPU memory of its caching allocator; on the CPU gndet reports the
// process's peak resident set instead.
double memory_mb(Device device) {
  if (device.is_cuda()) return static_cast<double>(cuda::memory_stats(device.index).peak_allocated_bytes) / (1 << 20);
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB -> MiB
}

std::vector<std::pair<std::string, double>> ap_metrics(const EvalReport& r) {
  static const char* const names[] = {"mAP", "mAP_50", "mAP_75", "mAP_s", "mAP_m", "mAP_l"};
  std::vector<std::pair<std::string, double>> m;
  for (const auto& [metric, result] : r.results) {
    for (int k = 0; k < 6; ++k) m.emplace_back("coco/" + metric + "_" + names[k], result.stats[k]);
  }
  return m;
}

}  // namespace

int run_training(const TrainOptions& opts) {
  Json cfg = load_run_config(opts.config, opts.cfg_options);
  const std::string work_dir = opts.work_dir.empty() ? default_work_dir(opts.config) : opts.work_dir;
  fs::create_directories(work_dir);
  const uint64_t seed = opts.seed ? *opts.seed
                                  : (cfg.contains("randomness") && cfg["randomness"].contains("seed") &&
                                             cfg["randomness"]["seed"].is_number_integer()
                                         ? cfg["randomness"]["seed"].get<uint64_t>()
                                         : 0);
  const std::string stem = fs::path(opts.config).stem().string();
  write_file_atomic(work_dir + "/" + stem + ".json", cfg.dump(2) + "\n");
  TrainLogger log(work_dir, "train");
  const Device device = choose_device(opts.device);
  log.info("config " + opts.config + " (resolved copy: " + work_dir + "/" + stem + ".json), device " + device.str() +
           ", seed " + std::to_string(seed));

  // ---- data ----
  const auto train_set = build_dataset(cfg, "train_dataloader");
  const data::LoaderOptions train_opts = loader_options(cfg, "train_dataloader", seed);
  data::DataLoader loader(train_set, train_opts);
  const int64_t iters_per_epoch = loader.batches_per_epoch();
  GNDET_CHECK(iters_per_epoch > 0, "the training set of ", opts.config, " is empty after filtering");
  std::shared_ptr<data::CocoDataset> val_set;
  if (opts.evaluate && cfg.contains("val_dataloader") && !cfg["val_dataloader"].is_null()) {
    val_set = build_dataset(cfg, "val_dataloader");
  }
  log.info("training images: " + std::to_string(train_set->size()) + ", iterations per epoch: " +
           std::to_string(iters_per_epoch) + (val_set ? ", val images: " + std::to_string(val_set->size()) : ""));

  // ---- model, optimizer, schedule ----
  std::string note;
  auto model = build_model(cfg, seed, device, &note);
  if (!note.empty()) log.info(note);
  if (!opts.load_from.empty()) {
    const nn::LoadReport r = model->load_state_dict(nn::load_state_dict_from_file(opts.load_from), /*strict=*/false);
    log.info("weights loaded from " + opts.load_from + (r.ok() ? "" : " (" + r.str() + ")"));
  }
  const ConfigNode optim(cfg.at("optim_wrapper"), "optim_wrapper");
  const ConfigNode sgd_cfg = optim["optimizer"];
  sgd_cfg.type({"SGD"});
  nn::SGDOptions sgd;
  sgd.lr = sgd_cfg["lr"].as_double();
  sgd.momentum = sgd_cfg.get_double("momentum", 0.0);
  sgd.weight_decay = sgd_cfg.get_double("weight_decay", 0.0);
  sgd.nesterov = sgd_cfg.get_bool("nesterov", false);
  if (cfg.contains("auto_scale_lr") && cfg["auto_scale_lr"].value("enable", false)) {
    sgd.lr *= static_cast<double>(train_opts.batch_size) / cfg["auto_scale_lr"]["base_batch_size"].get<double>();
  }
  nn::ParamwiseOptions rules;
  if (optim.has("paramwise_cfg")) {
    rules.bias_lr_mult = optim["paramwise_cfg"].get_double("bias_lr_mult", 1.0);
    rules.bias_decay_mult = optim["paramwise_cfg"].get_double("bias_decay_mult", 1.0);
    rules.norm_decay_mult = optim["paramwise_cfg"].get_double("norm_decay_mult", 1.0);
  }
  nn::SGD optimizer(nn::make_param_groups(*model, rules), sgd);
  const double clip = optim.has("clip_grad") && !optim["clip_grad"].is_null() ? optim["clip_grad"]["max_norm"].as_double() : -1;
  bool by_epoch = true;
  const nn::LrSchedule schedule = schedule_from_config(cfg, sgd.lr, &by_epoch);

  const ConfigNode loop(cfg.at("train_cfg"), "train_cfg");
  const bool iter_based = loop.type({"EpochBasedTrainLoop", "IterBasedTrainLoop"}) == "IterBasedTrainLoop";
  const int64_t max_iters = iter_based ? loop["max_iters"].as_int() : loop["max_epochs"].as_int() * iters_per_epoch;
  const int64_t val_interval = loop.get_int("val_interval", 1);
  const int64_t log_interval = cfg.contains("default_hooks") && cfg["default_hooks"].contains("logger")
                                   ? cfg["default_hooks"]["logger"].value("interval", 50)
                                   : 50;
  const int64_t ckpt_interval = cfg.contains("default_hooks") && cfg["default_hooks"].contains("checkpoint")
                                    ? cfg["default_hooks"]["checkpoint"].value("interval", 1)
                                    : 1;

  // ---- resume ----
  Generator gen(seed ^ 0x5eed5eedull);  // drives the samplers: separate from the weights' stream
  nn::TrainingState state;
  if (opts.resume) {
    const std::string path = opts.resume->empty() ? work_dir + "/latest.safetensors" : *opts.resume;
    GNDET_CHECK(fs::exists(path), "--resume: checkpoint '", path, "' not found");
    nn::load_checkpoint(path, *model, &optimizer, &state, /*strict=*/true);
    gen.set_state(state.rng_state);
    log.info("resumed from " + path + " at iteration " + std::to_string(state.iteration) + " (epoch " +
             std::to_string(state.epoch) + ")");
  }
  state.config_json = cfg.dump();
  log.start(state.iteration, state.iteration / iters_per_epoch);

  auto save = [&](const std::string& name) {
    state.rng_state = gen.state();
    const std::string path = work_dir + "/" + name;
    nn::save_checkpoint(path, *model, &optimizer, state);
    const std::string latest = work_dir + "/latest.safetensors";
    std::error_code ec;
    fs::copy_file(path, latest + ".tmp", fs::copy_options::overwrite_existing, ec);
    if (!ec) fs::rename(latest + ".tmp", latest, ec);
    GNDET_CHECK(!ec, "cannot update ", latest, ": ", ec.message());
    log.info("checkpoint saved: " + path);
  };
  auto evaluate = [&](int64_t epoch_done) {
    if (!val_set) return;
    const auto t0 = Clock::now();
    const EvalReport r = evaluate_detector(*model, *val_set, loader_options(cfg, "val_dataloader", seed), device,
                                           [&](int64_t done, int64_t total) {
                                             log.progress(done, total, seconds_since(t0) / done * (total - done), "eval");
                                           });
    log.end_progress();
    for (const auto& [metric, result] : r.results) {
      log.info("Evaluating " + metric + "...\n" + result.summary + copypaste_line(metric, result));
    }
    log.val(epoch_done, state.iteration, ap_metrics(r));
    // TensorBoard: detections on the first 4 validation images (apps/visualize.h).
    log.image("val/predictions", prediction_grid(*model, *val_set, loader_options(cfg, "val_dataloader", seed).pad_size_divisor,
                                                 device, class_names(cfg, model->num_classes()), 4, 0.3),
              state.iteration);
  };

  // ---- the loop ----
  model->train();
  const auto run_start = Clock::now();
  const int64_t first_iter = state.iteration;
  std::map<std::string, double> window;
  std::vector<std::string> order;
  double window_time = 0, window_data = 0, last_grad_norm = -1;
  int64_t window_count = 0;
  while (state.iteration < max_iters) {
    const int64_t data_epoch = state.iteration / iters_per_epoch;
    loader.start_epoch(data_epoch);
    for (int64_t skip = state.iteration - data_epoch * iters_per_epoch; skip > 0; --skip) loader.next();
    auto data_start = Clock::now();
    while (state.iteration < max_iters) {
      std::optional<data::Batch> batch = loader.next();
      if (!batch) break;
      const double data_time = seconds_since(data_start);
      const auto step_start = Clock::now();
      const int64_t epoch = state.iteration / iters_per_epoch;  // 0-based epoch of this update
      const double lr = schedule.lr_at(by_epoch ? epoch : 0, state.iteration);
      optimizer.set_lr(lr);

      const ModelInputs in = to_model_inputs(*batch, device, true);
      const LossDict losses = model->loss(in.images, in.targets, in.infos, gen);
      const Tensor total = total_loss(losses);
      const double total_value = total.item<double>();
      if (!std::isfinite(total_value)) {
        std::string parts;
        for (const auto& [name, v] : losses) parts += " " + name + "=" + std::to_string(v.item<double>());
        log.info("stopping: the loss is " + std::to_string(total_value) + " at iteration " +
                 std::to_string(state.iteration + 1) + " (epoch " + std::to_string(epoch + 1) + "):" + parts +
                 ". The last good checkpoint is " + work_dir + "/latest.safetensors (if one was saved); lower the "
                 "learning rate or check the data.");
        return 1;
      }
      optimizer.zero_grad();
      total.backward();
      if (clip > 0) last_grad_norm = nn::clip_grad_norm(model->parameters(), clip);
      optimizer.step();
      ++state.iteration;

      for (const auto& [name, v] : losses) {
        if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
        window[name] += v.item<double>();
      }
      window["loss"] += total_value;
      window_time += seconds_since(step_start) + data_time;
      window_data += data_time;
      ++window_count;
      const int64_t in_epoch = state.iteration - epoch * iters_per_epoch;
      const double per_iter = seconds_since(run_start) / static_cast<double>(state.iteration - first_iter);
      const double eta = per_iter * static_cast<double>(max_iters - state.iteration);
      if (state.iteration % log_interval == 0 || state.iteration == max_iters) {
        TrainRecord r;
        r.epoch = epoch + 1;
        r.iter_in_epoch = in_epoch;
        r.iters_per_epoch = iters_per_epoch;
        r.iteration = state.iteration;
        r.lr = lr;
        r.eta_seconds = eta;
        r.time = window_time / window_count;
        r.data_time = window_data / window_count;
        r.memory_mb = memory_mb(device);
        r.grad_norm = last_grad_norm;
        r.loss = window["loss"] / window_count;
        for (const std::string& name : order) r.values.emplace_back(name, window[name] / window_count);
        log.train(r);
        window.clear();
        window_time = window_data = 0;
        window_count = 0;
      } else {
        log.progress(in_epoch, iters_per_epoch, eta, "epoch " + std::to_string(epoch + 1));
      }

      const bool epoch_end = state.iteration % iters_per_epoch == 0;
      if (epoch_end) state.epoch = state.iteration / iters_per_epoch;
      const bool last = state.iteration == max_iters;
      const bool ckpt = iter_based ? (state.iteration % ckpt_interval == 0 || last)
                                   : (epoch_end && (state.epoch % ckpt_interval == 0 || last));
      const bool val = iter_based ? (state.iteration % val_interval == 0 || last)
                                  : (epoch_end && (state.epoch % val_interval == 0 || last));
      if (ckpt) save(iter_based ? "iter_" + std::to_string(state.iteration) + ".safetensors"
                                : "epoch_" + std::to_string(state.epoch) + ".safetensors");
      if (val) evaluate(iter_based ? state.iteration : state.epoch);
      if (ckpt || val) write_training_plot(log.scalars_path(), work_dir + "/training_curves.png");
      data_start = Clock::now();
    }
  }
  log.info("training finished: " + std::to_string(state.iteration) + " iterations in " +
           format_eta(seconds_since(run_start)));
  return 0;
}

}  // namespace gndet::app
