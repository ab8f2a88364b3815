// SGD with momentum and weight decay exactly as PyTorch defines it (dampening 0):
//   d_p = g + weight_decay * p
//   buf = d_p                          at a parameter's first step
//   buf = momentum * buf + d_p         afterwards
//   d_p = nesterov ? d_p + momentum * buf : buf
//   p  -= lr * d_p
// Parameters are organised in groups with their own lr and weight-decay multipliers (mmengine's
// paramwise_cfg, Detectron's 2x-lr biases and undecayed GN), and the optimizer state (momentum
// buffers) is keyed by parameter name so that a checkpoint can store and restore it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nn/module.h"

namespace gndet::nn {

struct NamedParameter {
  std::string name;
  Tensor tensor;
};

struct ParamGroup {
  std::vector<NamedParameter> params;
  double lr_mult = 1.0;     // the group runs at lr = base lr * lr_mult
  double decay_mult = 1.0;  // and weight decay = base weight decay * decay_mult
};

// mmengine's DefaultOptimWrapperConstructor rules (paramwise_cfg), per parameter:
//   in a norm layer (Module::is_norm):   decay_mult = norm_decay_mult (lr unchanged)
//   else named "bias":                   lr_mult = bias_lr_mult, decay_mult = bias_decay_mult
//   else:                                1, 1
// mmdetection's zoo: all 1 (decay applies to GN too). Detectron: bias_lr_mult 2,
// bias_decay_mult 0, norm_decay_mult 0.
struct ParamwiseOptions {
  double bias_lr_mult = 1.0;
  double bias_decay_mult = 1.0;
  double norm_decay_mult = 1.0;
};

// One group per distinct (lr_mult, decay_mult), in order of first appearance in
// model.named_parameters(); parameters that do not require grad (frozen) are left out.
std::vector<ParamGroup> make_param_groups(const Module& model, const ParamwiseOptions& rules = {});

struct SGDOptions {
  double lr = 0.02;  // base lr; a schedule overrides it through set_lr
  double momentum = 0.9;
  double weight_decay = 1e-4;
  bool nesterov = false;
};

class SGD {
 public:
  SGD(std::vector<ParamGroup> groups, const SGDOptions& options);

  // One update of every parameter that has a gradient (others are skipped, their state kept).
  void step();
  void zero_grad();  // every parameter's gradient becomes undefined

  void set_lr(double base_lr) { options_.lr = base_lr; }  // the schedule's value for this iteration
  double lr() const { return options_.lr; }
  double group_lr(size_t group) const { return options_.lr * groups_.at(group).lr_mult; }
  const SGDOptions& options() const { return options_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }

  // Momentum buffers by parameter name; a parameter has one after its first step.
  const std::map<std::string, Tensor>& momentum_buffers() const { return momentum_; }
  // Restores buffers saved by a checkpoint: each is copied into (or becomes) the buffer of the
  // parameter of that name. Names that are no parameter here are `unexpected`, wrong shapes
  // `mismatched` (neither is loaded); with strict either throws, listing all. Parameters without
  // a saved buffer are not an error (they had not been stepped), so `missing` stays empty.
  LoadReport load_momentum_buffers(const std::map<std::string, Tensor>& buffers, bool strict = true);
  // What load_momentum_buffers would report, without loading anything.
  LoadReport compare_momentum_buffers(const std::map<std::string, Tensor>& buffers) const;

 private:
  std::vector<ParamGroup> groups_;
  SGDOptions options_;
  std::map<std::string, Tensor> momentum_;
};

// Scales every gradient by max_norm / (total + 1e-6) when the global L2 norm `total` of all
// gradients exceeds max_norm (PyTorch's clip_grad_norm_). Returns total, measured before clipping.
double clip_grad_norm(const Tensors& params, double max_norm);

}  // namespace gndet::nn
