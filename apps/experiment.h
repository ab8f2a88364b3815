// What train, eval and infer share: a run's config, its datasets and loaders, the model, and the
// conversions between the data pipeline's batches, the model's inputs and COCO results.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/coco_dataset.h"
#include "data/coco_results.h"
#include "detection/detector.h"

namespace gndet::app {

// The config at `path` with --cfg-options applied (each "key.path=value" must name an existing key).
Json load_run_config(const std::string& path, const std::vector<std::string>& overrides);

// "auto" (a GPU when one is present, else the CPU; never the emulated CUDA device, which checks
// kernels on the CPU far slower than the CPU backend computes), "cpu", "cuda" or "cuda:N".
Device choose_device(const std::string& flag);
// The device of this rank of a data-parallel run: one GPU per rank on a machine (the rank's local
// rank picks it); with the emulated CUDA device, the process's own (each has one).
Device rank_device(Device chosen, int local_rank);

// The dataset of a dataloader section ("train_dataloader", "val_dataloader", "test_dataloader"),
// its pipeline followed by the normalisation and padding of model.data_preprocessor.
std::shared_ptr<data::CocoDataset> build_dataset(const Json& cfg, const std::string& section);
data::LoaderOptions loader_options(const Json& cfg, const std::string& section, uint64_t seed);
// Everything of the dataloader sections that can be checked without reading a file (loader
// options, dataset keys, pipeline steps, model.data_preprocessor), so that `gndet train` fails on a
// bad value there before it loads any annotations.
void check_data_config(const Json& cfg);

struct ModelInputs {
  Tensor images;                      // (B, 3, H, W) on the device
  std::vector<ImageTargets> targets;  // empty unless asked for
  std::vector<ImageInfo> infos;
};
ModelInputs to_model_inputs(const data::Batch& batch, Device device, bool with_targets);

// Detections of a batch -> COCO results (boxes as xywh, masks as compressed RLEs).
std::vector<data::Detection> to_coco_detections(const std::vector<Detections>& dets,
                                                const std::vector<ImageInfo>& infos, const data::CocoInstances& coco);

// Builds the detector of cfg["model"] with weights initialised from `seed`, moved to `device`.
// A backbone init_cfg naming a local file (.safetensors, .pth, .pkl) loads it; a zoo name
// (open-mmlab://detectron/resnet50_gn ...) loads the file found in the model folders
// (nn/checkpoint_io/zoo.h); when that file is absent the note says which file, its URL and where
// to put it, and the backbone starts from random weights, since gndet never fetches weights.
std::shared_ptr<TwoStageDetector> build_model(const Json& cfg, uint64_t seed, Device device, std::string* note);

// Class names of the run: the val annotation file's categories when it can be read, else
// cfg.metainfo.classes, else "class 0", "class 1", ...
std::vector<std::string> class_names(const Json& cfg, int64_t num_classes);

}  // namespace gndet::app
