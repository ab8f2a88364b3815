#include "apps/experiment.h"

#include <filesystem>

#include "nn/checkpoint.h"
#include "nn/checkpoint_io/zoo.h"
#include "tensor/backend.h"
#include "tensor/config.h"
#include "tensor/factory.h"

namespace gndet::app {

Json load_run_config(const std::string& path, const std::vector<std::string>& overrides) {
  Json cfg = load_config(path);
  for (const std::string& o : overrides) apply_config_override(cfg, o);
  GNDET_CHECK(cfg.contains("model"), "config '", path, "' has no \"model\" section");
  return cfg;
}

Device choose_device(const std::string& flag) {
  // auto never picks the emulated device: it runs kernels on the CPU, far slower than the CPU backend.
  if (flag == "auto") return cuda::is_available() && !cuda::is_emulated() ? Device::cuda(0) : kCPU;
  const Device d = Device::parse(flag);
  if (d.is_cuda()) backend_for(d);  // throws a clear error when there is no such GPU
  return d;
}

Device rank_device(Device chosen, int local_rank) {
  if (!chosen.is_cuda() || cuda::is_emulated()) return chosen;
  return Device::cuda(local_rank);
}

std::shared_ptr<data::CocoDataset> build_dataset(const Json& cfg, const std::string& section) {
  GNDET_CHECK(cfg.contains(section) && cfg[section].contains("dataset"), "config has no ", section, ".dataset");
  Json dataset = cfg[section]["dataset"];
  auto ds = data::CocoDataset::from_config(dataset, section + ".dataset");
  // mmdetection 3 normalises and pads in the model's data_preprocessor; gndet does it in the pipeline.
  if (cfg["model"].contains("data_preprocessor")) {
    for (auto& step : data::data_preprocessor_transforms(cfg["model"]["data_preprocessor"], "model.data_preprocessor")) {
      ds->append_transform(step);
    }
  }
  return ds;
}

void check_data_config(const Json& cfg) {
  if (cfg.contains("model") && cfg["model"].contains("data_preprocessor")) {
    (void)data::data_preprocessor_transforms(cfg["model"]["data_preprocessor"], "model.data_preprocessor");
  }
  for (const char* section : {"train_dataloader", "val_dataloader", "test_dataloader"}) {
    if (!cfg.contains(section) || cfg[section].is_null()) continue;
    (void)loader_options(cfg, section, 0);
    GNDET_CHECK(cfg[section].contains("dataset"), "config has no ", section, ".dataset");
    data::CocoDataset::check_config(cfg[section]["dataset"], std::string(section) + ".dataset");
  }
}

data::LoaderOptions loader_options(const Json& cfg, const std::string& section, uint64_t seed) {
  const ConfigNode loader = ConfigNode(cfg, "")[section];
  data::LoaderOptions o;
  // Ranged where read: a thread per worker (10^9 workers would exhaust the machine, 2^32 + 1 was cast to 1).
  o.batch_size = loader.get_int("batch_size", 1, 1, 1 << 20);
  o.num_workers = static_cast<int>(loader.get_int("num_workers", 2, 0, 1024));
  o.shuffle = loader.has("sampler") ? loader["sampler"].get_bool("shuffle", false) : false;
  o.group_by_aspect = loader.has("batch_sampler") && !loader["batch_sampler"].is_null() &&
                      loader["batch_sampler"].type({"AspectRatioBatchSampler"}) == "AspectRatioBatchSampler";
  o.drop_last = loader.get_bool("drop_last", false);
  o.pad_size_divisor = 1;  // the pipeline's Pad already aligned each image
  if (cfg["model"].contains("data_preprocessor")) {
    o.pad_size_divisor = ConfigNode(cfg["model"]["data_preprocessor"], "model.data_preprocessor")
                             .get_int("pad_size_divisor", 1, 1, 1 << 16);
  }
  o.seed = seed;
  return o;
}

ModelInputs to_model_inputs(const data::Batch& batch, Device device, bool with_targets) {
  ModelInputs in;
  in.images = batch.images.to(device);
  for (size_t i = 0; i < batch.metas.size(); ++i) {
    const data::ImageMeta& m = batch.metas[i];
    ImageInfo info;
    info.image_id = m.image_id;
    info.height = m.img_shape[0];
    info.width = m.img_shape[1];
    info.pad_height = m.pad_shape[0];
    info.pad_width = m.pad_shape[1];
    info.ori_height = m.ori_shape[0];
    info.ori_width = m.ori_shape[1];
    info.scale_w = m.scale_factor[0];
    info.scale_h = m.scale_factor[1];
    info.flipped = m.flip;
    in.infos.push_back(info);
    if (with_targets) {
      ImageTargets t;
      t.boxes = batch.gt_boxes[i].to(device);
      t.labels = batch.gt_labels[i].to(device);
      if (i < batch.gt_masks.size() && batch.gt_masks[i].defined()) t.masks = batch.gt_masks[i].to(device);
      in.targets.push_back(t);
    }
  }
  return in;
}

std::vector<data::Detection> to_coco_detections(const std::vector<Detections>& dets,
                                                const std::vector<ImageInfo>& infos, const data::CocoInstances& coco) {
  std::vector<data::Detection> out;
  for (size_t i = 0; i < dets.size(); ++i) {
    data::append_detections(out, coco, infos[i].image_id, dets[i].boxes.cpu(), dets[i].scores.cpu(), dets[i].labels.cpu(),
                            dets[i].masks.defined() ? dets[i].masks.cpu() : Tensor());
  }
  return out;
}

std::shared_ptr<TwoStageDetector> build_model(const Json& cfg, uint64_t seed, Device device, std::string* note) {
  Generator gen(seed);
  auto model = std::make_shared<TwoStageDetector>(cfg["model"], gen);
  const Json& backbone = cfg["model"]["backbone"];
  if (backbone.contains("init_cfg") && !backbone["init_cfg"].is_null()) {
    const ConfigNode init(backbone["init_cfg"], "model.backbone.init_cfg");
    init.type({"Pretrained"});
    std::string ckpt = init["checkpoint"].as_string();
    std::string zoo_problem;  // a zoo name whose file is not on this machine
    try {
      ckpt = nn::ckpt::resolve_checkpoint_path(ckpt);
    } catch (const Error& e) {
      zoo_problem = e.what();
    }
    if (zoo_problem.empty() && std::filesystem::exists(ckpt)) {
      nn::StateDict weights = nn::load_state_dict_from_file(ckpt);
      nn::StateDict prefixed;
      for (auto& [k, v] : weights) prefixed[k.rfind("backbone.", 0) == 0 ? k : "backbone." + k] = v;
      nn::LoadReport r = model->load_state_dict(prefixed, /*strict=*/false);
      // Only the backbone comes from this file: the rest of the model is not "missing" from it.
      std::erase_if(r.missing, [](const std::string& k) { return k.rfind("backbone.", 0) != 0; });
      if (note) *note = "backbone weights loaded from " + ckpt + (r.ok() ? "" : " (" + r.str() + ")");
    } else if (note && !zoo_problem.empty()) {
      *note = zoo_problem + "; the backbone starts from random weights";
    } else if (note) {
      *note = "backbone init_cfg names '" + ckpt + "', which is not a local file: the backbone starts from random "
              "weights (convert the pretrained weights and pass their path, or use --load-from)";
    }
  }
  model->to(device);
  return model;
}

std::vector<std::string> class_names(const Json& cfg, int64_t num_classes) {
  std::vector<std::string> names;
  for (const char* section : {"val_dataloader", "test_dataloader", "train_dataloader"}) {
    if (!cfg.contains(section)) continue;
    try {
      const auto ds = build_dataset(cfg, section);
      for (int64_t l = 0; l < ds->coco().num_classes(); ++l) names.push_back(ds->coco().category_name(l));
      if (static_cast<int64_t>(names.size()) == num_classes) return names;
    } catch (const Error&) {
    }
    names.clear();
  }
  if (cfg.contains("metainfo") && cfg["metainfo"].contains("classes")) {
    const ConfigNode classes = ConfigNode(cfg, "")["metainfo"]["classes"];
    for (size_t i = 0; i < classes.size(); ++i) names.push_back(classes.at(i).as_string());
    if (static_cast<int64_t>(names.size()) == num_classes) return names;
  }
  names.clear();
  for (int64_t l = 0; l < num_classes; ++l) names.push_back("class " + std::to_string(l));
  return names;
}

}  // namespace gndet::app
