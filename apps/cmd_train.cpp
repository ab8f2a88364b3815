// gndet train: trains a detector from an mmdetection-style config.
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/trainer.h"

namespace gndet::app {
namespace {

int run_train(const Args& args) {
  ArgParser p("gndet train",
              "Trains the detector of CONFIG: logs every logger.interval iterations (text and JSON lines), saves a\n"
              "checkpoint after every epoch (epoch_N.safetensors and latest.safetensors, written atomically),\n"
              "evaluates bbox / segm AP on the val set and draws training_curves.png in the work dir.\n"
              "A non-finite loss stops the run with exit code 1, keeping the last good checkpoint.");
  p.positional("CONFIG", "a JSON config (configs/...)")
      .option("--work-dir", "DIR", "where logs and checkpoints go", "work_dirs/<config name>")
      .optional_value("--resume", "CKPT",
                      "continue from CKPT, by default <work-dir>/latest.safetensors (weights, optimizer state, iteration,\n"
                      "      random state); put it after CONFIG")
      .option("--load-from", "CKPT", "start from these weights (model only; training starts at iteration 0)")
      .multi("--cfg-options", "KEY=VALUE", "override config entries, e.g. train_cfg.max_epochs=2 (keys must exist)")
      .option("--seed", "N", "random seed (weights, sampling, data order)", "config randomness.seed, else 0")
      .option("--device", "DEV", "cpu, cuda, cuda:N or auto", "auto")
      .flag("--no-validate", "skip the evaluation after each epoch")
      .option("--launcher", "L",
              "none (one process) or mpi (one rank per process, started by mpirun -np N or srun --mpi=pmix; gradients\n"
              "      averaged over the ranks, rank 0 logs, saves and scores; batch_size is per rank)", "none")
      .option("--amp", "T",
              "mixed precision: bf16 or fp16 convolutions and linear layers (float32 accumulation), float32 elsewhere,\n"
              "      dynamic loss scaling (as optim_wrapper.type=AmpOptimWrapper)", "the config's optim_wrapper")
      .flag("--auto-scale-lr", "scale the lr by (ranks x batch_size) / auto_scale_lr.base_batch_size")
      .option("--profile", "N", "profile N iterations after the first one (gndet profile's tables and trace, in\n"
              "      <work-dir>/profile/); training goes on unprofiled afterwards", "0")
      .example("gndet train configs/shapes/mask-rcnn_r18_fpn_gn-all_shapes.json")
      .example("gndet train configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json --cfg-options train_dataloader.batch_size=1")
      .example("gndet train CONFIG --work-dir work_dirs/run1 --resume")
      .example("gndet train CONFIG --resume work_dirs/run1/epoch_4.safetensors")
      .example("gndet train CONFIG --amp bf16")
      .example("mpirun -np 2 gndet train CONFIG --launcher mpi   (or tools/dist_train CONFIG 2)");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  TrainOptions o;
  o.config = p.get("CONFIG");
  if (p.has("--work-dir")) o.work_dir = p.get("--work-dir");
  if (p.has("--resume")) o.resume = p.get("--resume");
  if (p.has("--load-from")) o.load_from = p.get("--load-from");
  o.cfg_options = p.list("--cfg-options");
  if (p.has("--seed")) o.seed = static_cast<uint64_t>(p.get_int("--seed"));
  o.device = p.get("--device");
  o.evaluate = !p.has("--no-validate");
  o.launcher = p.get("--launcher");
  o.auto_scale_lr = p.has("--auto-scale-lr");
  if (p.has("--amp")) o.amp = p.get("--amp");
  o.profile_iters = static_cast<int>(p.get_int("--profile", 0, 100000));
  return run_training(o);
}

}  // namespace

GNDET_COMMAND("train", "train a detector from a config", run_train);

}  // namespace gndet::app
