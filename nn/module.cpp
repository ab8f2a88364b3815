#include "nn/module.h"

#include <set>
#include <sstream>

#include "tensor/grad_mode.h"
#include "tensor/json_text.h"

namespace gndet::nn {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

void collect(const Module& m, const std::string& prefix, bool buffers, NamedTensors* out) {
  for (const auto& [name, t] : buffers ? m.own_buffers() : m.own_parameters()) out->emplace_back(join(prefix, name), t);
  for (const auto& [name, child] : m.named_children()) collect(*child, join(prefix, name), buffers, out);
}

template <class M>
void collect_modules(M* m, const std::string& prefix, std::vector<std::pair<std::string, M*>>* out) {
  out->emplace_back(prefix, m);
  for (const auto& [name, child] : m->named_children()) collect_modules<M>(child.get(), join(prefix, name), out);
}

}  // namespace

std::string LoadReport::str() const {
  std::ostringstream os;
  auto list = [&](const char* title, const std::vector<std::string>& names) {
    if (names.empty()) return;
    if (os.tellp() > 0) os << "; ";
    os << title << " (" << names.size() << "): ";
    // Escaped, so keys that differ only by an invisible byte ("conv\x00.weight") read differently.
    for (size_t i = 0; i < names.size(); ++i) os << (i ? ", " : "") << printable(names[i]);
  };
  list("missing keys", missing);
  list("unexpected keys", unexpected);
  if (!mismatched.empty()) {
    if (os.tellp() > 0) os << "; ";
    os << "shape mismatches (" << mismatched.size() << "): ";
    for (size_t i = 0; i < mismatched.size(); ++i) {
      os << (i ? ", " : "") << printable(mismatched[i].name) << " (expected " << shape_str(mismatched[i].expected) << ", got "
         << shape_str(mismatched[i].got) << ")";
    }
  }
  return os.str();
}

// ---- registration ----

void Module::check_new_name(const std::string& name) const {
  GNDET_CHECK(!name.empty() && name.find('.') == std::string::npos, "Module: invalid name '", name,
              "' (must be non-empty and contain no '.')");
  auto taken = [&](const auto& list) {
    for (const auto& entry : list) {
      if (entry.first == name) return true;
    }
    return false;
  };
  GNDET_CHECK(!taken(params_) && !taken(buffers_) && !taken(children_), "Module: name '", name,
              "' is already registered in this module");
}

Tensor Module::register_parameter(const std::string& name, Tensor value, bool requires_grad) {
  check_new_name(name);
  GNDET_CHECK(value.defined(), "register_parameter: '", name, "' is undefined");
  GNDET_CHECK(is_floating(value.dtype()), "register_parameter: '", name, "' must be floating, got ",
              dtype_name(value.dtype()));
  if (!value.is_leaf()) value = value.detach();
  value.set_requires_grad(requires_grad);
  params_.emplace_back(name, value);
  return value;
}

Tensor Module::register_buffer(const std::string& name, Tensor value) {
  check_new_name(name);
  GNDET_CHECK(value.defined(), "register_buffer: '", name, "' is undefined");
  if (!value.is_leaf() || value.requires_grad()) value = value.detach();
  buffers_.emplace_back(name, value);
  return value;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  GNDET_CHECK(module != nullptr, "register_module: '", name, "' is null");
  children_.emplace_back(name, std::move(module));
}

// ---- traversal ----

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect(*this, "", false, &out);
  return out;
}

NamedTensors Module::named_buffers() const {
  NamedTensors out;
  collect(*this, "", true, &out);
  return out;
}

Tensors Module::parameters() const {
  Tensors out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out;
  collect_modules<Module>(this, "", &out);
  return out;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out;
  collect_modules<const Module>(this, "", &out);
  return out;
}

template <class F>
void Module::for_each_tensor(F&& f) {
  for (auto& [name, m] : named_modules()) {
    for (auto& entry : m->params_) f(entry.second, true);
    for (auto& entry : m->buffers_) f(entry.second, false);
  }
}

// ---- state ----

StateDict Module::state_dict() const {
  StateDict out;
  for (auto& [name, t] : named_parameters()) out[name] = t;
  for (auto& [name, t] : named_buffers()) out[name] = t;
  return out;
}

LoadReport Module::compare_state_dict(const StateDict& state) const {
  const StateDict own = state_dict();
  LoadReport report;
  for (const auto& [name, t] : own) {
    auto it = state.find(name);
    if (it == state.end()) {
      report.missing.push_back(name);
    } else if (!it->second.defined() || it->second.shape() != t.shape()) {
      report.mismatched.push_back({name, t.shape(), it->second.defined() ? it->second.shape() : Shape{}});
    }
  }
  for (const auto& [name, t] : state) {
    if (own.count(name) == 0) report.unexpected.push_back(name);
  }
  return report;
}

LoadReport Module::load_state_dict(const StateDict& state, bool strict) {
  const StateDict own = state_dict();
  const LoadReport report = compare_state_dict(state);
  GNDET_CHECK(!strict || report.ok(), "load_state_dict: ", report.str());
  autograd::NoGradGuard no_grad;
  for (const auto& [name, t] : own) {
    auto it = state.find(name);
    if (it == state.end() || !it->second.defined() || it->second.shape() != t.shape()) continue;
    Tensor dst = t;
    dst.copy_(it->second);
  }
  return report;
}

// ---- mode and placement ----

void Module::train(bool on) {
  for (auto& [name, m] : named_modules()) m->training_ = on;
}

void Module::to(Device device) {
  autograd::NoGradGuard no_grad;
  for_each_tensor([&](Tensor& t, bool) {
    if (t.device() == device) return;
    Tensor grad = t.grad();
    if (grad.defined()) t.set_grad(Tensor());
    t.set_data(t.detach().to(device));
    if (grad.defined()) t.set_grad(grad.to(device));
  });
}

void Module::to(DType dtype) {
  GNDET_CHECK(is_floating(dtype), "Module::to: target dtype must be floating, got ", dtype_name(dtype));
  autograd::NoGradGuard no_grad;
  for_each_tensor([&](Tensor& t, bool) {
    if (!is_floating(t.dtype()) || t.dtype() == dtype) return;
    Tensor grad = t.grad();
    if (grad.defined()) t.set_grad(Tensor());
    t.set_data(t.detach().to(dtype));
    if (grad.defined()) t.set_grad(grad.to(dtype));
  });
}

void Module::freeze() {
  for_each_tensor([](Tensor& t, bool is_param) {
    if (is_param) t.set_requires_grad(false);
  });
}

void Module::zero_grad() {
  for_each_tensor([](Tensor& t, bool is_param) {
    if (is_param) t.set_grad(Tensor());
  });
}

// ---- scopes for gndet graph ----

namespace {
thread_local const std::map<const Module*, std::string>* g_module_names = nullptr;
}

ModuleNames::ModuleNames(const Module& root) {
  auto* names = new std::map<const Module*, std::string>();
  for (const auto& [name, m] : root.named_modules()) {
    if (!name.empty()) (*names)[m] = name;
  }
  delete g_module_names;
  g_module_names = names;
}
ModuleNames::~ModuleNames() {
  delete g_module_names;
  g_module_names = nullptr;
}

ModuleScope::ModuleScope(const Module* module) {
  if (!autograd::tracing() || g_module_names == nullptr) return;
  const auto it = g_module_names->find(module);
  if (it != g_module_names->end()) guard_ = std::make_unique<autograd::ScopeGuard>(it->second);
}
ModuleScope::~ModuleScope() = default;

}  // namespace gndet::nn
