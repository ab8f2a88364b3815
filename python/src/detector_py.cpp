// The detector from Python: gndet.Detector over app::Predictor (the code `gndet infer` runs, so
// both give the same numbers), and gndet.train over the trainer `gndet train` runs.
#include <nanobind/stl/optional.h>
#include <map>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "python/src/bindings.h"
#include "apps/predictor.h"
#include "apps/trainer.h"
#include "data/image.h"
#include "nn/checkpoint.h"
#include "tensor/safetensors.h"

namespace gndet::py {
namespace {

// An image argument: a path (JPEG, PNG; gndet.Detector turns path-like objects into str) or an
// (H, W, 3) uint8 RGB array, which app::Predictor checks.
Tensor image_of(nb::handle image) {
  if (nb::isinstance<nb::str>(image)) return data::read_image(nb::cast<std::string>(image));
  return nb::isinstance<Tensor>(image) ? nb::cast<Tensor>(image) : from_numpy(image);
}

nb::object as_array(const Tensor& t) { return to_numpy(t.detach().cpu().contiguous()).attr("copy")(); }

}  // namespace

void bind_detector(nb::module_& m) {
  nb::class_<TwoStageDetector, nn::Module>(m, "TwoStageDetector", "Faster / Mask R-CNN (mmdetection's TwoStageDetector)")
      .def_prop_ro("num_classes", &TwoStageDetector::num_classes)
      .def_prop_ro("with_mask", &TwoStageDetector::with_mask);

  nb::class_<app::Predictor>(m, "_Predictor")
      .def("__init__", [](app::Predictor* self, const std::string& config, const std::string& checkpoint,
                          const std::string& device, const std::vector<std::string>& cfg_options) {
        const Json cfg = app::load_run_config(config, cfg_options);
        new (self) app::Predictor(cfg, checkpoint, app::choose_device(device), config);
      }, nb::arg("config"), nb::arg("checkpoint"), nb::arg("device"), nb::arg("cfg_options"))
      .def_prop_ro("model", [](const app::Predictor& p) { return &p.model(); }, nb::rv_policy::reference_internal)
      .def_prop_ro("class_names", &app::Predictor::class_names)
      .def_prop_ro("device", [](const app::Predictor& p) { return p.device().str(); })
      .def("predict", [](const app::Predictor& p, nb::handle image) {
        const Tensor img = image_of(image);
        Detections d;
        {
          nb::gil_scoped_release release;
          d = p.predict(img);
        }
        nb::dict out;
        out["boxes"] = as_array(d.boxes.reshape({-1, 4}));
        out["scores"] = as_array(d.scores);
        out["labels"] = as_array(d.labels);
        if (d.masks.defined()) out["masks"] = as_array(d.masks).attr("astype")("bool");
        return out;
      }, nb::arg("image"))
      .def("loss", [](const app::Predictor& p, nb::handle image, nb::handle boxes, nb::handle labels, nb::handle masks,
                      uint64_t seed) {
        const Tensor img = image_of(image);
        const Tensor b = as_tensor(boxes), l = as_tensor(labels);
        const Tensor mk = masks.is_none() ? Tensor() : as_tensor(masks);
        LossDict losses;
        {
          nb::gil_scoped_release release;
          losses = p.loss(img, b, l, mk, seed);
        }
        nb::dict out;
        for (const auto& [name, t] : losses) out[name.c_str()] = t;
        return out;
      }, nb::arg("image"), nb::arg("boxes"), nb::arg("labels"), nb::arg("masks") = nb::none(), nb::arg("seed") = 0);
  m.def("read_image", [](const std::string& path) { return data::read_image(path); }, nb::arg("path"),
        "a JPEG or PNG as an (H, W, 3) uint8 RGB tensor");

  m.def("save", [](nb::dict tensors, const std::string& path) {
        std::map<std::string, Tensor> named;
        for (auto [k, v] : tensors) named[nb::cast<std::string>(k)] = as_tensor(v).detach().cpu().contiguous();
        save_safetensors(path, named);
      }, nb::arg("tensors"), nb::arg("path"),
      "writes name -> tensor (or numpy array) as a safetensors file, atomically (gndet infer / Detector load it)");
  m.def("load", [](const std::string& path) {
        nb::dict out;
        for (const auto& [name, t] : nn::load_state_dict_from_file(path)) out[name.c_str()] = t;
        return out;
      }, nb::arg("path"),
      "name -> tensor of a safetensors file, a gndet checkpoint, a PyTorch .pth or a Detectron .pkl (never "
      "executing what the file asks)");
  m.def("_train", [](const std::string& config, const std::string& work_dir, const std::vector<std::string>& cfg_options,
                     const std::string& device, std::optional<uint64_t> seed, bool evaluate, const std::string& amp) {
    app::TrainOptions o;
    o.config = config;
    o.work_dir = work_dir.empty() ? app::default_work_dir(config) : work_dir;
    o.cfg_options = cfg_options;
    o.device = device;
    o.seed = seed;
    o.evaluate = evaluate;
    o.amp = amp;
    nb::gil_scoped_release release;
    return app::run_training(o);
  }, nb::arg("config"), nb::arg("work_dir"), nb::arg("cfg_options"), nb::arg("device"), nb::arg("seed"),
     nb::arg("evaluate"), nb::arg("amp"));
}

}  // namespace gndet::py
