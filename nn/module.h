// Module: a named tree of parameters, buffers and child modules, with names that match
// mmdetection's state_dict keys ("backbone.layer1.0.conv1.weight").
//
//   class Block : public nn::Module {
//    public:
//     explicit Block(Generator& gen) {
//       conv1_ = register_module("conv1", std::make_shared<nn::Conv2d>(nn::Conv2dOptions{...}, gen));
//       scale_ = register_parameter("scale", ones({1}));
//     }
//     Tensor forward(const Tensor& x) { return conv1_->forward(x) * scale_; }   // any signature
//    private:
//     std::shared_ptr<nn::Conv2d> conv1_;
//     Tensor scale_;
//   };
//
// register_* return handles that alias what the module stores: keep them as members and never
// reassign them (to change a value, copy_ into it under NoGradGuard, or load_state_dict). to()
// moves data with Tensor::set_data, so the handles stay valid across devices.
// Iteration order everywhere is registration order: a module's own parameters (or buffers), then
// its children's, depth first, as in PyTorch.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/trace.h"
#include "tensor/tensor.h"

namespace gndet::nn {

using StateDict = std::map<std::string, Tensor>;
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct ShapeMismatch {
  std::string name;
  Shape expected;  // the module's (or optimizer's) shape
  Shape got;       // the shape in the loaded state
};

// What load_state_dict found, by name.
struct LoadReport {
  std::vector<std::string> missing;     // in the module, absent from the state
  std::vector<std::string> unexpected;  // in the state, absent from the module
  std::vector<ShapeMismatch> mismatched;
  bool ok() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  // "missing keys: a, b; unexpected keys: c; shape mismatches: d (module (2, 3), file (3, 2))"
  std::string str() const;
};

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // ---- registration (names: non-empty, no '.', unique within this module) ----
  // Stores `value` (made a leaf that requires grad, unless requires_grad is false) and returns it.
  Tensor register_parameter(const std::string& name, Tensor value, bool requires_grad = true);
  // Stores a tensor that is saved and loaded but never optimised (running statistics, ...).
  Tensor register_buffer(const std::string& name, Tensor value);
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // ---- traversal ----
  NamedTensors named_parameters() const;  // recursive, dotted names
  NamedTensors named_buffers() const;
  Tensors parameters() const;
  // This module (name "") and every descendant, depth first.
  std::vector<std::pair<std::string, Module*>> named_modules();
  std::vector<std::pair<std::string, const Module*>> named_modules() const;
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const { return children_; }
  const NamedTensors& own_parameters() const { return params_; }
  const NamedTensors& own_buffers() const { return buffers_; }

  // ---- state ----
  StateDict state_dict() const;  // parameters and buffers (the tensors themselves, not copies)
  // Copies every matching tensor (converted to the module's dtype and device). With strict, any
  // missing key, unexpected key or shape mismatch throws one gndet::Error listing all of them and
  // nothing is loaded; without strict, the matching tensors are loaded and the rest reported.
  LoadReport load_state_dict(const StateDict& state, bool strict = true);
  // What load_state_dict(state) would report, without loading anything.
  LoadReport compare_state_dict(const StateDict& state) const;

  // ---- mode and placement ----
  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  void to(Device device);  // parameters, buffers and existing gradients; handles stay valid
  void to(DType dtype);    // floating parameters and buffers only
  void freeze();           // requires_grad off for every parameter, recursively
  void zero_grad();        // every parameter's gradient becomes undefined

  // mmengine's norm-layer test (paramwise optimiser rules): true for GroupNorm / FrozenBatchNorm2d.
  virtual bool is_norm() const { return false; }

 private:
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void check_new_name(const std::string& name) const;
  template <class F>
  void for_each_tensor(F&& f);  // every parameter and buffer of the tree

  NamedTensors params_;
  NamedTensors buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// A module with one input and one output: the layers that can go into a Sequential.
class UnaryModule : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  Tensor operator()(const Tensor& x) { return forward(x); }
};

// Module scopes for `gndet graph` (autograd/trace.h). While a ModuleNames of the root is alive on
// this thread, a ModuleScope made at the top of a module's forward labels the ops recorded inside
// with that module's dotted name ("backbone.layer1.0.conv2"); otherwise it does nothing but test a
// thread-local flag.
class ModuleNames {
 public:
  explicit ModuleNames(const Module& root);
  ~ModuleNames();
  ModuleNames(const ModuleNames&) = delete;
  ModuleNames& operator=(const ModuleNames&) = delete;
};

class ModuleScope {
 public:
  explicit ModuleScope(const Module* module);
  ~ModuleScope();
  ModuleScope(const ModuleScope&) = delete;
  ModuleScope& operator=(const ModuleScope&) = delete;

 private:
  std::unique_ptr<autograd::ScopeGuard> guard_;
};

}  // namespace gndet::nn
