#include "detection/fpn.h"

#include "nn/init.h"
#include "ops/pool.h"
#include "ops/resize.h"
#include "ops/elementwise.h"

namespace gndet {

FPNOptions FPNOptions::from_config(const ConfigNode& cfg) {
  cfg.type({"FPN"});
  cfg.check_keys({"type", "in_channels", "out_channels", "num_outs", "norm_cfg", "conv_cfg", "start_level", "add_extra_convs"});
  FPNOptions o;
  o.in_channels = cfg["in_channels"].as_int_list();
  o.out_channels = cfg["out_channels"].as_int();
  o.num_outs = cfg["num_outs"].as_int();
  o.norm = norm_from_config(cfg);
  o.ws = ws_from_config(cfg);
  GNDET_CHECK(cfg.get_int("start_level", 0) == 0, "config ", cfg.path(), ".start_level: only 0 is supported");
  GNDET_CHECK(!cfg.has("add_extra_convs") || cfg["add_extra_convs"].json() == false, "config ", cfg.path(),
              ".add_extra_convs: only false (P6 by max-pooling) is supported");
  GNDET_CHECK(o.num_outs >= static_cast<int64_t>(o.in_channels.size()), "config ", cfg.path(), ".num_outs ", o.num_outs,
              " is smaller than the number of inputs");
  return o;
}

FPN::FPN(const FPNOptions& o, Generator& gen) : options_(o) {
  lateral_convs_ = register_module("lateral_convs", std::make_shared<nn::Sequential>());
  fpn_convs_ = register_module("fpn_convs", std::make_shared<nn::Sequential>());
  for (int64_t c : o.in_channels) {
    lateral_convs_->push_back(
        std::make_shared<nn::ConvModule>(conv_module_options(c, o.out_channels, 1, o.norm, o.ws, false), gen));
    fpn_convs_->push_back(
        std::make_shared<nn::ConvModule>(conv_module_options(o.out_channels, o.out_channels, 3, o.norm, o.ws, false), gen));
  }
  for (auto& [name, p] : named_parameters()) {
    if (p.dim() == 4) nn::init::xavier_uniform(p, gen);
    else if (name.find(".conv.bias") != std::string::npos) nn::init::constant(p, 0.0);
  }
}

std::vector<Tensor> FPN::forward(const std::vector<Tensor>& inputs) {
  const size_t n = options_.in_channels.size();
  GNDET_CHECK(inputs.size() == n, "FPN: expected ", n, " feature maps, got ", inputs.size());
  nn::ModuleScope scope(this);
  std::vector<Tensor> laterals;
  for (size_t i = 0; i < n; ++i) laterals.push_back((*lateral_convs_)[i]->forward(inputs[i]));
  for (size_t i = n - 1; i > 0; --i) {
    const Tensor& fine = laterals[i - 1];
    laterals[i - 1] = fine + upsample_nearest(laterals[i], fine.size(2), fine.size(3));
  }
  std::vector<Tensor> outs;
  for (size_t i = 0; i < n; ++i) outs.push_back((*fpn_convs_)[i]->forward(laterals[i]));
  while (static_cast<int64_t>(outs.size()) < options_.num_outs) {
    outs.push_back(max_pool2d(outs.back(), {1, 1}, {2, 2}));
  }
  return outs;
}

}  // namespace gndet
