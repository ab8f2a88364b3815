// Checkpoints: one safetensors file holding everything a resumed run needs.
//
//   tensors   "model.<name>"            every parameter and buffer (mmdetection key names)
//             "optim.momentum.<name>"   SGD momentum buffers, by parameter name
//   metadata  "format"    "gndet.checkpoint.v1"
//             "training"  {"iteration": i, "epoch": e, "rng_state": "..."}      (JSON)
//             "optim"     {"lr": base, "momentum": m, "weight_decay": wd, "nesterov": b,
//                          "groups": [{"lr": .., "lr_mult": .., "decay_mult": .., "params": [..]}]}
//             "config"    the run's config, verbatim JSON text
// The file is written to a temporary name and renamed (save_safetensors), so a crash never leaves
// a half-written checkpoint. A truncated or corrupt file raises a gndet::Error naming the file.
#pragma once

#include <string>

#include "nn/module.h"
#include "nn/optim.h"

namespace gndet::nn {

struct TrainingState {
  int64_t iteration = 0;    // iterations completed
  int64_t epoch = 0;        // epochs completed
  std::string rng_state;    // Generator::state()
  std::string config_json;  // the config the run was started with
  // Mixed precision (nn/loss_scaler.h): the loss scale and its growth tracker; 0 when the run
  // trains in float32 (and in checkpoints from before mixed precision).
  double loss_scale = 0;
  int64_t loss_scale_growth_tracker = 0;
};

// optimizer may be null (a model-only checkpoint).
void save_checkpoint(const std::string& path, const Module& model, const SGD* optimizer, const TrainingState& state);

struct CheckpointReport {
  LoadReport model;
  LoadReport optimizer;
  bool ok() const { return model.ok() && optimizer.ok(); }
};

// Loads what `path` holds into model (and optimizer and state when not null). With strict, any
// missing / unexpected / mis-shaped model key or bad momentum buffer throws one gndet::Error
// naming the file and listing them all; without strict, what matches is loaded and the rest
// reported. The optimizer's base lr is restored from the file.
CheckpointReport load_checkpoint(const std::string& path, Module& model, SGD* optimizer, TrainingState* state,
                                 bool strict = true);

// name -> tensor (CPU) of a plain safetensors file of weights. For a gndet checkpoint, its model
// part with the "model." prefix removed. A PyTorch .pth (zip or legacy) or a detectron2 / Detectron
// .pkl is read natively (nn/checkpoint_io) and renamed to gndet's names by the source its keys
// show; keys no rule maps keep their file names, so that loading reports them as unexpected.
StateDict load_state_dict_from_file(const std::string& path);

}  // namespace gndet::nn
