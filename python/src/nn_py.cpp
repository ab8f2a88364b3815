// gndet.nn's C++ modules and gndet.optim.SGD. Modules are held by shared_ptr, so one built in
// Python can be handed to C++ (a Sequential) and live as long as either side holds it. Python
// modules (python/gndet/nn.py) compose these with tensors of their own.
#include <nanobind/stl/array.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "python/src/bindings.h"
#include "detection/fpn.h"
#include "detection/resnet.h"
#include "nn/layers.h"
#include "nn/norm_layers.h"
#include "nn/optim.h"
#include "tensor/json_text.h"

namespace gndet::py {
namespace {

Generator& init_generator() { return default_generator(); }  // gndet.manual_seed makes inits repeatable

// A Python dict as the JSON of a config section (mmdetection's keyword names).
Json to_json(const nb::dict& d) {
  const std::string text = nb::cast<std::string>(nb::module_::import_("json").attr("dumps")(d));
  return parse_json_text(text, "module arguments");
}

nb::dict load_report(const nn::LoadReport& r) {
  nb::dict d;
  d["missing_keys"] = r.missing;
  d["unexpected_keys"] = r.unexpected;
  nb::list mismatched;
  for (const auto& m : r.mismatched) mismatched.append(m.name);
  d["mismatched_keys"] = mismatched;
  return d;
}

Pair pair_of(nb::handle h, const char* what) {
  if (nb::isinstance<nb::int_>(h)) {
    const int64_t v = nb::cast<int64_t>(h);
    return {v, v};
  }
  try {
    return nb::cast<Pair>(h);
  } catch (const nb::cast_error&) {
    throw nb::type_error((std::string(what) + " must be an int or a pair of ints").c_str());
  }
}

}  // namespace

void bind_nn(nb::module_& m) {
  nb::module_ nn_m = m.def_submodule("nn", "gndet's C++ layers");
  nb::class_<nn::Module>(nn_m, "Module", "a tree of named parameters, buffers and child modules")
      .def("named_parameters", &nn::Module::named_parameters, "(dotted name, tensor) of every parameter")
      .def("parameters", &nn::Module::parameters, "every parameter, in registration order (depth first)")
      .def("named_buffers", &nn::Module::named_buffers, "(dotted name, tensor) of every buffer (running statistics, ...)")
      .def("named_children", [](const nn::Module& mod) {
        nb::list out;
        for (const auto& [name, child] : mod.named_children()) out.append(nb::make_tuple(name, child));
        return out;
      }, "(name, module) of the direct children")
      .def("state_dict", [](const nn::Module& mod) {
        nb::dict d;
        for (const auto& [name, t] : mod.state_dict()) d[name.c_str()] = to_numpy(t.detach().cpu());
        return d;
      }, "name -> numpy array (sharing memory with CPU tensors, as torch's state_dict shares)")
      .def("load_state_dict", [](nn::Module& mod, nb::dict state, bool strict) {
        nn::StateDict sd;
        for (auto [k, v] : state) sd[nb::cast<std::string>(k)] = as_tensor(v);
        return load_report(mod.load_state_dict(sd, strict));
      }, nb::arg("state_dict"), nb::arg("strict") = true,
      "copies numpy arrays or tensors in by name; strict: a missing, unexpected or mis-shaped key raises, listing all")
      .def("train", [](nn::Module& mod, bool on) { mod.train(on); }, nb::arg("mode") = true, "training mode on (or off), recursively")
      .def("eval", &nn::Module::eval, "training mode off, recursively")
      .def_prop_ro("training", &nn::Module::is_training, "whether in training mode")
      .def("to", [](nn::Module& mod, const std::string& where) {
        if (where == "float32" || where == "float64") mod.to(parse_dtype(where));
        else mod.to(parse_device(where));
      }, nb::arg("dtype_or_device"), "moves parameters and buffers ('cuda', 'cpu') or converts them ('float64'); handles stay valid")
      .def("zero_grad", &nn::Module::zero_grad, "every parameter's gradient becomes None")
      .def("freeze", &nn::Module::freeze, "requires_grad off for every parameter, recursively");

  nb::class_<nn::UnaryModule, nn::Module>(nn_m, "UnaryModule", "a module with one input and one output")
      .def("forward", &nn::UnaryModule::forward, nb::arg("x"), "the layer applied to x")
      .def("__call__", &nn::UnaryModule::forward, nb::arg("x"), "the layer applied to x");

  auto conv_init = [](nn::Conv2d* self, int64_t in, int64_t out, nb::handle kernel, nb::handle stride,
                      nb::handle padding, nb::handle dilation, int64_t groups, bool bias, bool ws, double eps) {
    nn::Conv2dOptions o{.in_channels = in, .out_channels = out, .kernel = pair_of(kernel, "kernel_size"),
                        .stride = pair_of(stride, "stride"), .padding = pair_of(padding, "padding"),
                        .dilation = pair_of(dilation, "dilation"), .groups = groups, .bias = bias,
                        .weight_standardization = ws, .ws_eps = eps};
    new (self) nn::Conv2d(o, init_generator());
  };
  nb::class_<nn::Conv2d, nn::UnaryModule>(nn_m, "Conv2d", "2-D convolution (PyTorch's Conv2d; weight_standardization: mmcv's ConvWS2d)")
      .def("__init__", conv_init, nb::arg("in_channels"), nb::arg("out_channels"), nb::arg("kernel_size"),
           nb::arg("stride") = 1, nb::arg("padding") = 0, nb::arg("dilation") = 1, nb::arg("groups") = 1,
           nb::arg("bias") = true, nb::arg("weight_standardization") = false, nb::arg("eps") = 1e-5)
      .def_prop_ro("weight", &nn::Conv2d::weight)
      .def_prop_ro("bias", [](const nn::Conv2d& c) { return c.bias().defined() ? nb::cast(c.bias()) : nb::none(); });
  nb::class_<nn::Linear, nn::UnaryModule>(nn_m, "Linear", "x @ weight.T + bias")
      .def("__init__", [](nn::Linear* self, int64_t in, int64_t out, bool bias) {
        new (self) nn::Linear(in, out, bias, init_generator());
      }, nb::arg("in_features"), nb::arg("out_features"), nb::arg("bias") = true)
      .def_prop_ro("weight", &nn::Linear::weight)
      .def_prop_ro("bias", [](const nn::Linear& l) { return l.bias().defined() ? nb::cast(l.bias()) : nb::none(); });
  nb::class_<nn::GroupNorm, nn::UnaryModule>(nn_m, "GroupNorm", "GroupNorm (Wu & He) with per-channel weight and bias")
      .def(nb::init<int64_t, int64_t, double, bool>(), nb::arg("num_groups"), nb::arg("num_channels"),
           nb::arg("eps") = 1e-5, nb::arg("affine") = true)
      .def_prop_ro("weight", &nn::GroupNorm::weight)
      .def_prop_ro("bias", &nn::GroupNorm::bias);
  nb::class_<nn::FrozenBatchNorm2d, nn::UnaryModule>(nn_m, "FrozenBatchNorm2d", "batch norm with fixed statistics")
      .def(nb::init<int64_t, double>(), nb::arg("num_features"), nb::arg("eps") = 1e-5);
  nb::class_<nn::ReLU, nn::UnaryModule>(nn_m, "ReLU").def(nb::init<>());
  nb::class_<nn::MaxPool2d, nn::UnaryModule>(nn_m, "MaxPool2d")
      .def("__init__", [](nn::MaxPool2d* self, nb::handle k, nb::handle s, nb::handle p, bool ceil) {
        new (self) nn::MaxPool2d(pair_of(k, "kernel_size"), pair_of(s.is_none() ? k : s, "stride"),
                                 pair_of(p, "padding"), ceil);
      }, nb::arg("kernel_size"), nb::arg("stride") = nb::none(), nb::arg("padding") = 0, nb::arg("ceil_mode") = false);
  nb::class_<nn::Sequential, nn::UnaryModule>(nn_m, "Sequential", "layers applied in order; children named 0, 1, ...")
      .def("__init__", [](nn::Sequential* self, nb::args layers) {
        new (self) nn::Sequential();
        for (nb::handle h : layers) self->push_back(nb::cast<std::shared_ptr<nn::UnaryModule>>(h));
      });
  nb::class_<ResNet, nn::Module>(nn_m, "ResNet",
      "mmdetection's ResNet / ResNeXt backbone; keyword arguments as its config (depth, norm_cfg, conv_cfg, ...)")
      .def("__init__", [](ResNet* self, nb::kwargs kw) {
        nb::dict d(kw);
        if (!d.contains("type")) d["type"] = "ResNet";
        const Json j = to_json(d);
        new (self) ResNet(ResNetOptions::from_config(ConfigNode(j, "ResNet")), init_generator());
      })
      .def("forward", &ResNet::forward, nb::arg("x"), "the feature maps of out_indices (strides 4, 8, 16, 32)")
      .def("__call__", &ResNet::forward, nb::arg("x"));
  nb::class_<FPN, nn::Module>(nn_m, "FPN", "mmdetection's FPN neck; keyword arguments as its config")
      .def("__init__", [](FPN* self, nb::kwargs kw) {
        nb::dict d(kw);
        if (!d.contains("type")) d["type"] = "FPN";
        const Json j = to_json(d);
        new (self) FPN(FPNOptions::from_config(ConfigNode(j, "FPN")), init_generator());
      })
      .def("forward", &FPN::forward, nb::arg("inputs"))
      .def("__call__", &FPN::forward, nb::arg("inputs"));

  nb::module_ optim = m.def_submodule("optim", "optimizers");
  nb::class_<nn::SGD>(optim, "SGD", "SGD with momentum and weight decay exactly as PyTorch's (dampening 0)")
      .def("__init__", [](nn::SGD* self, const Tensors& params, double lr, double momentum, double weight_decay,
                          bool nesterov) {
        nn::ParamGroup group;
        for (size_t i = 0; i < params.size(); ++i) {
          if (!params[i].requires_grad()) throw nb::value_error("SGD: a parameter does not require grad");
          group.params.push_back({"param" + std::to_string(i), params[i]});
        }
        new (self) nn::SGD({group}, nn::SGDOptions{lr, momentum, weight_decay, nesterov});
      }, nb::arg("params"), nb::arg("lr"), nb::arg("momentum") = 0.0, nb::arg("weight_decay") = 0.0,
      nb::arg("nesterov") = false)
      .def("step", &nn::SGD::step, "one update of every parameter that has a gradient")
      .def("zero_grad", &nn::SGD::zero_grad, "every parameter's gradient becomes None")
      .def_prop_rw("lr", &nn::SGD::lr, &nn::SGD::set_lr, "the learning rate of the next step");
}

}  // namespace gndet::py
