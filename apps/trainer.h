// `gndet train`: the training loop of an mmdetection config.
//
//   for each iteration: batch -> losses -> NaN/inf check -> backward -> clip -> SGD step (lr from
//   the schedule; with mixed precision the forward pass autocasts, backward starts from the scaled
//   loss and an overflow skips clip and step); every logger.interval iterations a log line; after each epoch (every
//   val_interval) a checkpoint (epoch_N and latest, written atomically), COCO evaluation of the
//   val set and the loss / AP plot. --resume continues from a checkpoint with the optimizer
//   state, iteration counter and random state it saved, so the resumed run repeats exactly the
//   updates the uninterrupted one would have made (on the CPU, with the same thread count).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace gndet::app {

struct TrainOptions {
  std::string config;
  std::string work_dir;                    // default: work_dirs/<config name>
  std::optional<std::string> resume;       // "" = <work_dir>/latest.safetensors
  std::string load_from;                   // weights to start from (model only)
  std::vector<std::string> cfg_options;
  std::optional<uint64_t> seed;            // default: randomness.seed, else 0
  std::string device = "auto";
  bool evaluate = true;                    // evaluate after each val_interval
  // Data parallelism: "none" (one process) or "mpi" (ranks started by mpirun / srun --mpi=pmix;
  // rank 0 logs, writes checkpoints and scores the evaluation; every rank computes).
  std::string launcher = "none";
  bool auto_scale_lr = false;              // as mmdetection's --auto-scale-lr: enables cfg.auto_scale_lr
  int profile_iters = 0;                   // > 0: profile that many iterations after the first (rank 0)
  // Mixed precision ("bf16" or "fp16"; "" = as the config says): products in that type, a loss
  // scaler (ops/autocast.h, nn/loss_scaler.h). Overrides optim_wrapper.type / dtype.
  std::string amp;
};

// Returns the process exit code: 0 on success, 1 when training stopped on a non-finite loss.
int run_training(const TrainOptions& options);

// The work dir mmdetection would use: work_dirs/<config file name without extension>.
std::string default_work_dir(const std::string& config_path);

}  // namespace gndet::app
