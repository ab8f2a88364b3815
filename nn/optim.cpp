#include "nn/optim.h"

#include <cmath>
#include <set>

#include "tensor/grad_mode.h"
#include "ops/elementwise.h"
#include "ops/optim_step.h"
#include "ops/reduce.h"

namespace gndet::nn {

std::vector<ParamGroup> make_param_groups(const Module& model, const ParamwiseOptions& rules) {
  std::vector<ParamGroup> groups;
  for (const auto& [prefix, m] : model.named_modules()) {
    for (const auto& [name, t] : m->own_parameters()) {
      if (!t.requires_grad()) continue;
      double lr_mult = 1.0, decay_mult = 1.0;
      if (m->is_norm()) {
        decay_mult = rules.norm_decay_mult;
      } else if (name == "bias") {
        lr_mult = rules.bias_lr_mult;
        decay_mult = rules.bias_decay_mult;
      }
      ParamGroup* group = nullptr;
      for (ParamGroup& g : groups) {
        if (g.lr_mult == lr_mult && g.decay_mult == decay_mult) group = &g;
      }
      if (group == nullptr) {
        groups.push_back({{}, lr_mult, decay_mult});
        group = &groups.back();
      }
      group->params.push_back({prefix.empty() ? name : prefix + "." + name, t});
    }
  }
  return groups;
}

SGD::SGD(std::vector<ParamGroup> groups, const SGDOptions& options) : groups_(std::move(groups)), options_(options) {
  GNDET_CHECK(options.lr >= 0 && options.momentum >= 0 && options.weight_decay >= 0, "SGD: lr ", options.lr,
              ", momentum ", options.momentum, " and weight_decay ", options.weight_decay, " must be non-negative");
  GNDET_CHECK(!options.nesterov || options.momentum > 0, "SGD: nesterov needs a positive momentum");
  std::set<std::string> names;
  for (const ParamGroup& g : groups_) {
    for (const NamedParameter& p : g.params) {
      GNDET_CHECK(p.tensor.defined() && is_floating(p.tensor.dtype()), "SGD: parameter '", p.name,
                  "' is not a floating tensor");
      GNDET_CHECK(names.insert(p.name).second, "SGD: parameter name '", p.name, "' appears twice");
    }
  }
}

void SGD::step() {
  autograd::NoGradGuard no_grad;
  for (const ParamGroup& group : groups_) {
    const SgdStep update{.lr = options_.lr * group.lr_mult,
                         .momentum = options_.momentum,
                         .weight_decay = options_.weight_decay * group.decay_mult,
                         .nesterov = options_.nesterov};
    for (const NamedParameter& p : group.params) {
      const Tensor g = p.tensor.grad();
      if (!g.defined()) continue;
      Tensor param = p.tensor;
      const auto it = momentum_.find(p.name);
      Tensor buf = it != momentum_.end() ? it->second : Tensor();
      sgd_step_(param, g, buf, update);  // with momentum, an undefined buf becomes the new buffer
      if (options_.momentum != 0.0 && it == momentum_.end()) momentum_.emplace(p.name, buf);
    }
  }
}

void SGD::zero_grad() {
  for (const ParamGroup& group : groups_) {
    for (const NamedParameter& p : group.params) {
      Tensor t = p.tensor;
      t.set_grad(Tensor());
    }
  }
}

namespace {
std::map<std::string, Tensor> params_by_name(const std::vector<ParamGroup>& groups) {
  std::map<std::string, Tensor> params;
  for (const ParamGroup& g : groups) {
    for (const NamedParameter& p : g.params) params[p.name] = p.tensor;
  }
  return params;
}
}  // namespace

LoadReport SGD::compare_momentum_buffers(const std::map<std::string, Tensor>& buffers) const {
  const std::map<std::string, Tensor> params = params_by_name(groups_);
  LoadReport report;
  for (const auto& [name, buf] : buffers) {
    auto it = params.find(name);
    if (it == params.end()) {
      report.unexpected.push_back(name);
    } else if (!buf.defined() || buf.shape() != it->second.shape()) {
      report.mismatched.push_back({name, it->second.shape(), buf.defined() ? buf.shape() : Shape{}});
    }
  }
  return report;
}

LoadReport SGD::load_momentum_buffers(const std::map<std::string, Tensor>& buffers, bool strict) {
  const std::map<std::string, Tensor> params = params_by_name(groups_);
  const LoadReport report = compare_momentum_buffers(buffers);
  GNDET_CHECK(!strict || report.ok(), "SGD::load_momentum_buffers: ", report.str());
  autograd::NoGradGuard no_grad;
  for (const auto& [name, buf] : buffers) {
    auto it = params.find(name);
    if (it == params.end() || !buf.defined() || buf.shape() != it->second.shape()) continue;
    momentum_[name] = buf.detach().to(it->second.options()).clone();
  }
  return report;
}

double clip_grad_norm(const Tensors& params, double max_norm) {
  GNDET_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be positive, got ", max_norm);
  autograd::NoGradGuard no_grad;
  double total_sq = 0.0;
  Tensors grads;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    grads.push_back(g);
    total_sq += sum(g.to(kFloat64) * g.to(kFloat64)).item<double>();
  }
  const double total = std::sqrt(total_sq);
  const double scale = max_norm / (total + 1e-6);
  if (scale < 1.0) {
    for (Tensor& g : grads) mul_(g, scale);
  }
  return total;
}

}  // namespace gndet::nn
