#include "nn/checkpoint.h"

#include <nlohmann/json.hpp>
#include <optional>

#include "nn/checkpoint_io/name_map.h"
#include "nn/checkpoint_io/torch_file.h"
#include "tensor/json_text.h"
#include "tensor/safetensors.h"

namespace gndet::nn {

namespace {

constexpr const char* kFormat = "gndet.checkpoint.v1";
const std::string kModelPrefix = "model.";
const std::string kMomentumPrefix = "optim.momentum.";

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

nlohmann::json parse_metadata(const SafetensorsFile& file, const std::string& path, const char* key) {
  auto it = file.metadata.find(key);
  GNDET_CHECK(it != file.metadata.end(), "checkpoint '", path, "': metadata '", key, "' is missing");
  return parse_json_text(it->second, "checkpoint '" + path + "': metadata '" + key + "'");
}

bool is_checkpoint(const SafetensorsFile& file) {
  auto it = file.metadata.find("format");
  return it != file.metadata.end() && it->second == kFormat;
}

}  // namespace

void save_checkpoint(const std::string& path, const Module& model, const SGD* optimizer, const TrainingState& state) {
  std::map<std::string, Tensor> tensors;
  for (const auto& [name, t] : model.state_dict()) tensors[kModelPrefix + name] = t;
  std::map<std::string, std::string> metadata;
  metadata["format"] = kFormat;
  nlohmann::json training{{"iteration", state.iteration}, {"epoch", state.epoch}, {"rng_state", state.rng_state}};
  if (state.loss_scale > 0) {
    training["loss_scale"] = state.loss_scale;
    training["loss_scale_growth_tracker"] = state.loss_scale_growth_tracker;
  }
  metadata["training"] = training.dump();
  metadata["config"] = state.config_json;
  if (optimizer != nullptr) {
    for (const auto& [name, buf] : optimizer->momentum_buffers()) tensors[kMomentumPrefix + name] = buf;
    const SGDOptions& o = optimizer->options();
    nlohmann::json groups = nlohmann::json::array();
    for (size_t i = 0; i < optimizer->param_groups().size(); ++i) {
      const ParamGroup& g = optimizer->param_groups()[i];
      nlohmann::json names = nlohmann::json::array();
      for (const NamedParameter& p : g.params) names.push_back(p.name);
      groups.push_back({{"lr", optimizer->group_lr(i)}, {"lr_mult", g.lr_mult}, {"decay_mult", g.decay_mult},
                        {"params", names}});
    }
    metadata["optim"] = nlohmann::json{{"lr", o.lr},
                                       {"momentum", o.momentum},
                                       {"weight_decay", o.weight_decay},
                                       {"nesterov", o.nesterov},
                                       {"groups", groups}}
                            .dump();
  }
  save_safetensors(path, tensors, metadata);
}

CheckpointReport load_checkpoint(const std::string& path, Module& model, SGD* optimizer, TrainingState* state,
                                 bool strict) {
  const SafetensorsFile file = load_safetensors(path);
  GNDET_CHECK(is_checkpoint(file), "'", path, "' is not a gndet checkpoint (its metadata has no format '", kFormat,
              "'); load plain weights with load_state_dict_from_file");
  StateDict model_state;
  std::map<std::string, Tensor> momentum;
  CheckpointReport report;
  for (const auto& [name, t] : file.tensors) {
    if (starts_with(name, kModelPrefix)) {
      model_state[name.substr(kModelPrefix.size())] = t;
    } else if (starts_with(name, kMomentumPrefix)) {
      momentum[name.substr(kMomentumPrefix.size())] = t;
    } else {
      report.model.unexpected.push_back(name);
    }
  }
  // Metadata first, then shapes: everything is checked before anything is loaded, so a strict failure leaves model and
  // optimizer untouched.
  TrainingState saved_state;
  if (state != nullptr) {
    const nlohmann::json training = parse_metadata(file, path, "training");
    try {
      saved_state.iteration = training.at("iteration").get<int64_t>();
      saved_state.epoch = training.at("epoch").get<int64_t>();
      saved_state.rng_state = training.at("rng_state").get<std::string>();
      if (training.contains("loss_scale")) {
        saved_state.loss_scale = training.at("loss_scale").get<double>();
        saved_state.loss_scale_growth_tracker = training.at("loss_scale_growth_tracker").get<int64_t>();
      }
    } catch (const nlohmann::json::exception& e) {
      GNDET_FAIL("checkpoint '", path, "': bad training metadata: ", e.what());
    }
    auto it = file.metadata.find("config");
    saved_state.config_json = it == file.metadata.end() ? std::string() : it->second;
  }
  std::optional<double> saved_lr;
  if (optimizer != nullptr && file.metadata.count("optim")) {
    const nlohmann::json optim = parse_metadata(file, path, "optim");
    GNDET_CHECK(optim.contains("lr") && optim["lr"].is_number(), "checkpoint '", path,
                "': optimizer metadata has no numeric 'lr'");
    saved_lr = optim["lr"].get<double>();
  }
  const LoadReport compared = model.compare_state_dict(model_state);
  report.model.missing = compared.missing;
  report.model.mismatched = compared.mismatched;
  report.model.unexpected.insert(report.model.unexpected.end(), compared.unexpected.begin(), compared.unexpected.end());
  if (optimizer != nullptr) report.optimizer = optimizer->compare_momentum_buffers(momentum);
  if (strict && !report.ok()) {
    std::string why = report.model.str();
    if (!report.optimizer.ok()) why += (why.empty() ? "" : "; ") + std::string("optimizer: ") + report.optimizer.str();
    GNDET_FAIL("checkpoint '", path, "' does not match: ", why);
  }
  model.load_state_dict(model_state, false);
  if (optimizer != nullptr) {
    optimizer->load_momentum_buffers(momentum, false);
    if (saved_lr) optimizer->set_lr(*saved_lr);
  }
  if (state != nullptr) *state = saved_state;
  return report;
}

StateDict load_state_dict_from_file(const std::string& path) {
  if (ckpt::looks_like_pickled_checkpoint(path)) {
    const ckpt::ForeignWeights foreign = ckpt::read_foreign_checkpoint(path);
    ckpt::MappedWeights mapped = ckpt::map_names(foreign.tensors, ckpt::NameSource::Auto);
    for (const std::string& key : mapped.unmapped) {
      for (const auto& [k, t] : foreign.tensors) {
        if (k == key) mapped.tensors.emplace(key, t);
      }
    }
    return std::move(mapped.tensors);
  }
  SafetensorsFile file = load_safetensors(path);
  if (!is_checkpoint(file)) return std::move(file.tensors);
  StateDict out;
  for (const auto& [name, t] : file.tensors) {
    if (starts_with(name, kModelPrefix)) out[name.substr(kModelPrefix.size())] = t;
  }
  return out;
}

}  // namespace gndet::nn
