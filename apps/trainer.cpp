#include "apps/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sys/resource.h>

#include "apps/evaluation.h"
#include "apps/plot.h"
#include "apps/profile_session.h"
#include "apps/train_log.h"
#include "apps/visualize.h"
#include "ops/autocast.h"
#include "ops/elementwise.h"
#include "tensor/grad_mode.h"
#include "dist/grad_sync.h"
#include "nn/checkpoint.h"
#include "nn/loss_scaler.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "tensor/cuda_api.h"
#include "tensor/factory.h"
#include "tensor/json_text.h"
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
  const ConfigNode list = ConfigNode(cfg, "")["param_scheduler"];
  for (size_t i = 0; i < list.size(); ++i) {
    const ConfigNode s = list.at(i);
    const std::string type = s.type({"LinearLR", "MultiStepLR"});
    if (type == "LinearLR") {
      s.check_keys({"type", "start_factor", "by_epoch", "begin", "end"});
      GNDET_CHECK(!s.get_bool("by_epoch", true) && s.get_int("begin", 0) == 0, "config ", s.path(),
                  ": warmup must be by iteration and begin at 0");
      o.warmup = nn::WarmupKind::Linear;
      o.warmup_factor = s["start_factor"].as_double();
      o.warmup_iters = s["end"].as_int();
    } else {
      s.check_keys({"type", "milestones", "by_epoch", "gamma", "begin", "end"});
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

// Mixed precision: mmengine's AmpOptimWrapper (optim_wrapper.type, .dtype, .loss_scale) or --amp.
struct Amp {
  std::optional<DType> dtype;  // nullopt: float32 training
  nn::LossScalerOptions scaler;
  std::string describe() const {
    char line[200];
    std::snprintf(line, sizeof(line), "mixed precision: %s products, float32 elsewhere; %s loss scale %g", dtype_name(*dtype),
                  scaler.dynamic ? "dynamic" : "static", scaler.init_scale);
    return line;
  }
};

Amp amp_from_config(const ConfigNode& optim, bool amp_wrapper, const std::string& amp_flag) {
  Amp amp;
  if (!amp_wrapper && amp_flag.empty()) {
    for (const char* key : {"loss_scale", "dtype"}) {
      GNDET_CHECK(!optim.has(key), "config ", optim.path(), ".", key, ": only an AmpOptimWrapper has it (type is OptimWrapper)");
    }
    return amp;
  }
  // mmengine's AmpOptimWrapper autocasts to float16 unless dtype says otherwise; --amp decides over both.
  amp.dtype = !amp_flag.empty()               ? autocast::parse_dtype(amp_flag, "--amp")
              : optim.has("dtype") && !optim["dtype"].is_null() ? autocast::parse_dtype(optim["dtype"].as_string(), "config " + optim.path() + ".dtype")
                                                                : kFloat16;
  if (!optim.has("loss_scale") || optim["loss_scale"].is_null()) return amp;  // "dynamic", GradScaler's defaults
  const ConfigNode ls = optim["loss_scale"];
  if (ls.json().is_string()) {
    if (ls.as_string() != "dynamic") ls.fail("expected \"dynamic\", a number or GradScaler's arguments");
  } else if (ls.json().is_number()) {
    amp.scaler.dynamic = false;  // mmengine: a number is a static scale
    amp.scaler.init_scale = ls.as_double();
  } else if (ls.json().is_object()) {
    ls.check_keys({"init_scale", "growth_factor", "backoff_factor", "growth_interval", "enabled"});
    GNDET_CHECK(ls.get_bool("enabled", true), "config ", ls.path(), ".enabled: false is not supported (remove the AmpOptimWrapper instead)");
    amp.scaler.init_scale = ls.get_double("init_scale", amp.scaler.init_scale);
    amp.scaler.growth_factor = ls.get_double("growth_factor", amp.scaler.growth_factor);
    amp.scaler.backoff_factor = ls.get_double("backoff_factor", amp.scaler.backoff_factor);
    amp.scaler.growth_interval = ls.get_int("growth_interval", amp.scaler.growth_interval, 1, INT64_MAX);
  } else {
    ls.fail("expected \"dynamic\", a number or GradScaler's arguments");
  }
  try {
    nn::LossScaler check(amp.scaler);  // a bad value fails now, before the model is built
  } catch (const Error& e) {
    GNDET_FAIL("config ", ls.path(), ": ", e.what());
  }
  return amp;
}

int train(const TrainOptions& opts, const std::shared_ptr<dist::Communicator>& comm) {
  const bool main_rank = comm->is_main();
  const int world = comm->world_size();
  Json cfg = load_run_config(opts.config, opts.cfg_options);
  const std::string work_dir = opts.work_dir.empty() ? default_work_dir(opts.config) : opts.work_dir;
  fs::create_directories(work_dir);
  const ConfigNode root(cfg, "");
  const uint64_t seed =
      opts.seed ? *opts.seed
                : (root.has("randomness") ? static_cast<uint64_t>(root["randomness"].get_int("seed", 0, 0, INT64_MAX)) : 0);
  const std::string stem = fs::path(opts.config).stem().string();
  if (main_rank) write_file_atomic(work_dir + "/" + stem + ".json", cfg.dump(2, ' ', false, Json::error_handler_t::replace) + "\n");
  TrainLogger log(work_dir, "train", main_rank);
  Device device = choose_device(opts.device);
  if (world > 1) device = rank_device(device, comm->info().local_rank);  // one GPU per rank
  log.info("config " + opts.config + " (resolved copy: " + work_dir + "/" + stem + ".json), device " + describe(device) +
           ", seed " + std::to_string(seed));

  // ---- the config outside model, checked before the model is built and before any data is read:
  // a bad value anywhere fails at once, naming its key ----
  check_data_config(cfg);
  data::LoaderOptions train_opts = loader_options(cfg, "train_dataloader", seed);
  train_opts.rank = comm->rank();
  train_opts.world_size = world;

  // ---- optimizer, schedule ----
  const ConfigNode optim = root["optim_wrapper"];
  optim.check_keys({"type", "optimizer", "paramwise_cfg", "clip_grad", "loss_scale", "dtype"});
  const bool amp_wrapper = optim.has("type") && optim.type({"OptimWrapper", "AmpOptimWrapper"}) == "AmpOptimWrapper";
  const Amp amp = amp_from_config(optim, amp_wrapper, opts.amp);
  const ConfigNode sgd_cfg = optim["optimizer"];
  sgd_cfg.check_keys({"type", "lr", "momentum", "weight_decay", "nesterov"});
  sgd_cfg.type({"SGD"});
  nn::SGDOptions sgd;
  sgd.lr = sgd_cfg["lr"].as_double();
  sgd.momentum = sgd_cfg.get_double("momentum", 0.0);
  sgd.weight_decay = sgd_cfg.get_double("weight_decay", 0.0);
  sgd.nesterov = sgd_cfg.get_bool("nesterov", false);
  GNDET_CHECK(!opts.auto_scale_lr || cfg.contains("auto_scale_lr"), "--auto-scale-lr: config ", opts.config,
              " has no auto_scale_lr section (auto_scale_lr.base_batch_size)");
  if (root.has("auto_scale_lr") && (opts.auto_scale_lr || root["auto_scale_lr"].get_bool("enable", false))) {
    // mmdetection: lr x (ranks x batch per rank) / base_batch_size.
    const double base = static_cast<double>(root["auto_scale_lr"]["base_batch_size"].as_int(1, INT64_MAX));
    const double before = sgd.lr;
    sgd.lr *= static_cast<double>(world * train_opts.batch_size) / base;
    char line[160];
    std::snprintf(line, sizeof(line), "auto_scale_lr: lr %g -> %g for a batch of %lld = %d rank(s) x %lld (base_batch_size %g)",
                  before, sgd.lr, static_cast<long long>(world * train_opts.batch_size), world,
                  static_cast<long long>(train_opts.batch_size), base);
    log.info(line);
  }
  nn::ParamwiseOptions rules;
  if (optim.has("paramwise_cfg")) {
    optim["paramwise_cfg"].check_keys({"bias_lr_mult", "bias_decay_mult", "norm_decay_mult"});
    rules.bias_lr_mult = optim["paramwise_cfg"].get_double("bias_lr_mult", 1.0);
    rules.bias_decay_mult = optim["paramwise_cfg"].get_double("bias_decay_mult", 1.0);
    rules.norm_decay_mult = optim["paramwise_cfg"].get_double("norm_decay_mult", 1.0);
  }
  double clip = -1;
  if (optim.has("clip_grad") && !optim["clip_grad"].is_null()) {
    const ConfigNode c = optim["clip_grad"];
    c.check_keys({"max_norm", "norm_type"});
    GNDET_CHECK(c.get_double("norm_type", 2.0) == 2.0, "config ", c.path(), ".norm_type: only 2 (the L2 norm) is supported");
    clip = c["max_norm"].as_double();
  }
  bool by_epoch = true;
  const nn::LrSchedule schedule = schedule_from_config(cfg, sgd.lr, &by_epoch);

  const ConfigNode loop = root["train_cfg"];
  loop.check_keys({"type", "max_epochs", "max_iters", "val_interval"});
  const bool iter_based = loop.type({"EpochBasedTrainLoop", "IterBasedTrainLoop"}) == "IterBasedTrainLoop";
  const int64_t loop_length = iter_based ? loop["max_iters"].as_int(1, INT64_MAX) : loop["max_epochs"].as_int(1, INT64_MAX);
  // Intervals are divisors (iteration % interval): 0 or less is an error naming the key.
  const int64_t val_interval = loop.get_int("val_interval", 1, 1, INT64_MAX);
  const bool hooks = root.has("default_hooks") && !root["default_hooks"].is_null();
  auto hook_interval = [&](const char* hook, int64_t fallback) {
    if (!hooks) return fallback;
    GNDET_CHECK(root["default_hooks"].json().is_object(), "config default_hooks: expected an object, got ",
                json_excerpt(root["default_hooks"].json()));
    if (!root["default_hooks"].has(hook) || root["default_hooks"][hook].is_null()) return fallback;
    const ConfigNode h = root["default_hooks"][hook];
    GNDET_CHECK(h.json().is_object(), "config ", h.path(), ": expected an object, got ", json_excerpt(h.json()));
    return h.get_int("interval", fallback, 1, INT64_MAX);
  };
  // The hooks gndet's loop has (mmdetection's default_hooks), with only the options it follows.
  if (hooks && root["default_hooks"].json().is_object()) {
    const ConfigNode h = root["default_hooks"];
    h.check_keys({"timer", "logger", "param_scheduler", "checkpoint", "sampler_seed", "visualization"});
    for (const char* name : {"timer", "param_scheduler", "sampler_seed", "visualization", "logger", "checkpoint"}) {
      if (!h.has(name) || !h[name].json().is_object()) continue;  // hook_interval names a non-object
      const bool has_interval = std::string(name) == "logger" || std::string(name) == "checkpoint";
      h[name].check_keys(has_interval ? std::vector<std::string>{"type", "interval"} : std::vector<std::string>{"type"});
    }
  }
  const int64_t log_interval = hook_interval("logger", 50);
  const int64_t ckpt_interval = hook_interval("checkpoint", 1);

  // ---- model (its constructor checks every model section, train_cfg and test_cfg included) ----
  std::string note;
  auto model = build_model(cfg, seed, device, &note);
  if (!note.empty()) log.info(note);
  if (!opts.load_from.empty()) {
    const nn::LoadReport r = model->load_state_dict(nn::load_state_dict_from_file(opts.load_from), /*strict=*/false);
    log.info("weights loaded from " + opts.load_from + (r.ok() ? "" : " (" + r.str() + ")"));
  }

  nn::SGD optimizer(nn::make_param_groups(*model, rules), sgd);
  std::optional<nn::LossScaler> scaler;
  if (amp.dtype) {
    scaler.emplace(amp.scaler);
    log.info(amp.describe());
  }

  // ---- data ----
  const auto train_set = build_dataset(cfg, "train_dataloader");
  data::DataLoader loader(train_set, train_opts);
  const int64_t iters_per_epoch = loader.batches_per_epoch();
  GNDET_CHECK(iters_per_epoch > 0, "the training set of ", opts.config, " is empty after filtering");
  std::shared_ptr<data::CocoDataset> val_set;
  if (opts.evaluate && cfg.contains("val_dataloader") && !cfg["val_dataloader"].is_null()) {
    val_set = build_dataset(cfg, "val_dataloader");
  }
  log.info("training images: " + std::to_string(train_set->size()) + ", iterations per epoch: " +
           std::to_string(iters_per_epoch) + (val_set ? ", val images: " + std::to_string(val_set->size()) : ""));

  const int64_t max_iters = iter_based ? loop_length : loop_length * iters_per_epoch;

  // ---- resume ----
  Generator gen(seed ^ 0x5eed5eedull);  // drives the samplers: separate from the weights' stream
  nn::TrainingState state;
  if (opts.resume) {
    const std::string path = opts.resume->empty() ? work_dir + "/latest.safetensors" : *opts.resume;
    GNDET_CHECK(fs::exists(path), "--resume: checkpoint '", path, "' not found");
    nn::load_checkpoint(path, *model, &optimizer, &state, /*strict=*/true);
    gen.set_state(state.rng_state);
    if (scaler && state.loss_scale > 0) scaler->load_state(state.loss_scale, state.loss_scale_growth_tracker);
    if (!iter_based && state.iteration != state.epoch * iters_per_epoch) {
      // Saved by a run with another number of ranks: epochs are what carries over.
      log.info("the checkpoint's iteration " + std::to_string(state.iteration) + " is " + std::to_string(state.epoch) +
               " epoch(s) of a run with another number of ranks: continuing at iteration " +
               std::to_string(state.epoch * iters_per_epoch) + " (" + std::to_string(iters_per_epoch) + " per epoch with " +
               std::to_string(world) + " rank(s))");
      state.iteration = state.epoch * iters_per_epoch;
    }
    log.info("resumed from " + path + " at iteration " + std::to_string(state.iteration) + " (epoch " +
             std::to_string(state.epoch) + ")");
  }
  // replace: an override given as invalid UTF-8 text would make dump() throw (type_error.316).
  state.config_json = cfg.dump(-1, ' ', false, Json::error_handler_t::replace);
  // Data parallelism: the same weights everywhere, then averaged gradients after every backward.
  dist::broadcast_module(*comm, *model);
  std::shared_ptr<dist::Communicator> grad_comm = comm;
  if (world > 1 && device.is_cuda() && dist::nccl_built()) grad_comm = dist::nccl_communicator(comm, device.index);
  Tensors trainable;
  for (const Tensor& p : model->parameters()) {
    if (p.requires_grad()) trainable.push_back(p);
  }
  dist::GradientAverager averager(grad_comm, trainable);
  if (world > 1) {
    log.info("data parallel: world size " + std::to_string(world) + " (launcher " + opts.launcher + ", gradients by " +
             grad_comm->backend() + ", " + std::to_string(averager.num_buckets()) + " buckets, " +
             std::to_string(averager.num_floats()) + " floats, each reduced as soon as backward has filled it), one " + (device.is_cuda() ? "GPU" : "CPU process") +
             " per rank, batch " + std::to_string(train_opts.batch_size) + " per rank, effective batch " +
             std::to_string(world * train_opts.batch_size));
  }
  log.start(state.iteration, state.iteration / iters_per_epoch);

  auto save = [&](const std::string& name) {
    if (!main_rank) return;
    state.rng_state = gen.state();
    state.loss_scale = scaler ? scaler->scale() : 0.0;
    state.loss_scale_growth_tracker = scaler ? scaler->growth_tracker() : 0;
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
                                           },
                                           comm.get());
    if (!main_rank) return;
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
  std::unique_ptr<ProfileSession> profile;  // --profile: iterations after the first one, on rank 0
  auto finish_profile = [&] {
    log.info("profile of " + std::to_string(profile->steps_done()) + " iteration(s):\n" +
             profile->finish(work_dir + "/profile", opts.config + ", train, " + describe(device)));
    profile.reset();
  };
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

      if (opts.profile_iters > 0 && main_rank && state.iteration == first_iter + 1) {
        profile = std::make_unique<ProfileSession>(*model);
      }
      if (profile) profile->step_begin("iteration " + std::to_string(state.iteration + 1));
      const ModelInputs in = to_model_inputs(*batch, device, true);
      LossDict losses;
      {
        const autocast::Guard mixed_precision(amp.dtype);  // the forward pass only, as mmengine's optim_context
        losses = model->loss(in.images, in.targets, in.infos, gen);
      }
      const Tensor total = total_loss(losses);
      const double total_value = total.item<double>();
      bool all_finite = std::isfinite(total_value);
      if (world > 1) {  // every rank stops together, or none does
        Tensor bad = full({1}, all_finite ? 0.0 : 1.0, kFloat32);
        comm->all_reduce_sum(bad);
        all_finite = bad.item<double>() == 0.0;
      }
      if (!all_finite) {
        std::string parts;
        for (const auto& [name, v] : losses) parts += " " + name + "=" + std::to_string(v.item<double>());
        if (!main_rank && !std::isfinite(total_value)) {  // rank 0 logs; this rank says what it saw
          std::fprintf(stderr, "rank %d: the loss is %g at iteration %lld:%s\n", comm->rank(), total_value,
                       static_cast<long long>(state.iteration + 1), parts.c_str());
        }
        log.info(std::string(std::isfinite(total_value) ? "stopping: another rank's loss is not finite; rank 0's" : "stopping: the") +
                 " loss is " + std::to_string(total_value) + " at iteration " +
                 std::to_string(state.iteration + 1) + " (epoch " + std::to_string(epoch + 1) + "):" + parts +
                 ". The last good checkpoint is " + work_dir + "/latest.safetensors (if one was saved); lower the "
                 "learning rate or check the data" +
                 (amp.dtype == kFloat16 ? " (under float16 an activation beyond 65504 is inf: try --amp bf16)." : "."));
        return 1;
      }
      optimizer.zero_grad();
      if (scaler) {
        (total * scaler->scale()).backward();
      } else {
        total.backward();
      }
      averager.average();  // clipping and the update see the mean over the ranks
      // Mixed precision: unscaled gradients for clipping and the update; an overflow skips the step.
      const bool overflow = scaler && !scaler->unscale(trainable);
      if (!overflow) {
        if (clip > 0) last_grad_norm = nn::clip_grad_norm(model->parameters(), clip);
        optimizer.step();
      }
      if (scaler) {
        const double before = scaler->scale();
        scaler->update(overflow);
        if (overflow) {
          char line[200];
          std::snprintf(line, sizeof(line), "iteration %lld: gradients overflowed at loss scale %g, update skipped, scale now %g",
                        static_cast<long long>(state.iteration + 1), before, scaler->scale());
          log.info(line);
          GNDET_CHECK(scaler->scale() >= 0x1p-24, "the gradients overflow at every loss scale down to ", scaler->scale(),
                      " (iteration ", state.iteration + 1, "): training has diverged; lower the learning rate or use --amp bf16");
        }
      }
      ++state.iteration;
      if (profile) {
        profile->step_end();
        if (profile->steps_done() == opts.profile_iters) finish_profile();
      }

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
      if ((ckpt || val) && main_rank) write_training_plot(log.scalars_path(), work_dir + "/training_curves.png");
      data_start = Clock::now();
    }
  }
  if (profile) finish_profile();  // the run ended first
  log.info("training finished: " + std::to_string(state.iteration) + " iterations in " +
           format_eta(seconds_since(run_start)));
  return 0;
}

}  // namespace

int run_training(const TrainOptions& opts) {
  const std::shared_ptr<dist::Communicator> comm = dist::init_communicator(opts.launcher);
  if (comm->world_size() == 1) return train(opts, comm);
  try {
    const int code = train(opts, comm);
    comm->barrier();  // rank 0 may still be scoring; MPI_Finalize after everyone is done
    return code;
  } catch (const std::exception& e) {
    // The other ranks would wait in their next collective: stop them all, saying why.
    comm->abort(1, std::string("error: ") + e.what());
  }
  return 1;  // not reached: abort() ends the process (a virtual call is not known to the compiler as noreturn)
}

}  // namespace gndet::app
