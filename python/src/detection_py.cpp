// gndet._core.detection: the pieces of one training step that the detector otherwise keeps to
// itself (anchors, MaxIoUAssigner, RandomSampler, the first stage's proposals), so that a notebook
// (docs/notebooks/mask_rcnn_step.ipynb) can take the step apart. Assigner and sampler settings
// are the config's own dicts ({"type": "MaxIoUAssigner", ...}); random draws come from a
// Generator seeded as Detector.loss seeds its own, and its state travels as a string, so a caller
// can continue the stream exactly where the step's RPN left it.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "python/src/bindings.h"
#include "apps/experiment.h"
#include "apps/predictor.h"
#include "data/loader.h"
#include "detection/anchors.h"
#include "detection/assigner.h"
#include "detection/detector.h"
#include "detection/sampler.h"
#include "tensor/json_text.h"

namespace gndet::py {
namespace {

Json json_of(nb::handle d, const char* what) {
  const std::string text = nb::cast<std::string>(nb::module_::import_("json").attr("dumps")(d));
  return parse_json_text(text, what);
}

nb::object python_of(const Json& j) { return nb::module_::import_("json").attr("loads")(j.dump()); }

Generator generator_of(uint64_t seed, const std::optional<std::string>& state) {
  Generator gen(seed);
  if (state) gen.set_state(*state);
  return gen;
}

nb::dict sampling_dict(const SamplingResult& s, const Generator& gen) {
  nb::dict d;
  d["pos_inds"] = s.pos_inds, d["neg_inds"] = s.neg_inds;
  d["pos_boxes"] = s.pos_boxes, d["neg_boxes"] = s.neg_boxes;
  d["pos_gt_inds"] = s.pos_gt_inds, d["pos_gt_boxes"] = s.pos_gt_boxes, d["pos_gt_labels"] = s.pos_gt_labels;
  d["pos_is_gt"] = s.pos_is_gt;
  d["generator_state"] = gen.state();
  return d;
}

}  // namespace

void bind_detection_internals(nb::module_& m) {
  nb::module_ d = m.def_submodule("detection", "the detector's internals, for taking a training step apart");

  d.def("anchors", [](const std::vector<int64_t>& strides, const std::vector<double>& ratios,
                      const std::vector<double>& scales, const std::vector<std::pair<int64_t, int64_t>>& feat_sizes,
                      double center_offset) {
    GNDET_CHECK(feat_sizes.size() == strides.size(), "anchors: ", feat_sizes.size(), " feature sizes for ",
                strides.size(), " strides");
    const AnchorGenerator gen(strides, ratios, scales, center_offset);
    Tensors levels;
    for (size_t l = 0; l < strides.size(); ++l) {
      levels.push_back(gen.grid_anchors(static_cast<int64_t>(l), feat_sizes[l].first, feat_sizes[l].second,
                                        TensorOptions(kFloat32)).clone());
    }
    return levels;
  }, nb::arg("strides"), nb::arg("ratios"), nb::arg("scales"), nb::arg("feat_sizes"), nb::arg("center_offset") = 0.0,
  "AnchorGenerator: per level, the (H * W * A, 4) float32 anchors of an H x W feature map, "
  "anchor (y * W + x) * A + a; feat_sizes: one (H, W) per stride");

  d.def("assign", [](nb::handle boxes_in, nb::handle gt_boxes_in, nb::handle gt_labels_in, nb::dict cfg) {
    const Tensor boxes = as_tensor(boxes_in), gt_boxes = as_tensor(gt_boxes_in), gt_labels = as_tensor(gt_labels_in);
    const Json j = json_of(cfg, "assigner config");
    const MaxIoUAssigner a = MaxIoUAssigner::from_config(ConfigNode(j, "assigner"));
    AssignResult r;
    {
      nb::gil_scoped_release release;
      r = a.assign(boxes, gt_boxes.to(boxes.dtype()), gt_labels);
    }
    nb::dict out;
    out["gt_inds"] = r.gt_inds, out["max_overlaps"] = r.max_overlaps, out["labels"] = r.labels;
    out["num_gts"] = r.num_gts;
    return out;
  }, nb::arg("boxes"), nb::arg("gt_boxes"), nb::arg("gt_labels"), nb::arg("assigner"),
  "MaxIoUAssigner (a config dict): gt_inds (-1 ignored, 0 negative, i + 1 positive for gt i), "
  "max_overlaps, labels (-1 unless positive), num_gts");

  d.def("sample", [](nb::handle boxes_in, nb::handle gt_boxes_in, nb::handle gt_labels_in, nb::dict assigner,
                     nb::dict sampler, uint64_t seed, std::optional<std::string> generator_state) {
    const Tensor boxes = as_tensor(boxes_in), gt_boxes = as_tensor(gt_boxes_in), gt_labels = as_tensor(gt_labels_in);
    const Json ja = json_of(assigner, "assigner config"), js = json_of(sampler, "sampler config");
    const MaxIoUAssigner a = MaxIoUAssigner::from_config(ConfigNode(ja, "assigner"));
    const RandomSampler s = RandomSampler::from_config(ConfigNode(js, "sampler"));
    Generator gen = generator_of(seed, generator_state);
    SamplingResult r;
    {
      nb::gil_scoped_release release;
      r = s.sample(a, boxes, gt_boxes.to(boxes.dtype()), gt_labels, gen);
    }
    return sampling_dict(r, gen);
  }, nb::arg("boxes"), nb::arg("gt_boxes"), nb::arg("gt_labels"), nb::arg("assigner"), nb::arg("sampler"),
  nb::arg("seed") = 0, nb::arg("generator_state") = nb::none(),
  "assigns, then RandomSampler (a config dict) draws positives and negatives: pos_inds, neg_inds, pos_boxes, "
  "neg_boxes, pos_gt_inds, pos_gt_boxes, pos_gt_labels, pos_is_gt, and the generator_state after the draws "
  "(a Generator(seed), or continued from generator_state)");

  d.def("model_config", [](const TwoStageDetector& model) { return python_of(model.config()); }, nb::arg("model"),
        "the model's config dict (its train_cfg and test_cfg included), as the detector was built from it");

  d.def("rpn_stage", [](const std::string& config, TwoStageDetector& model, nb::handle image_in, nb::handle boxes_in,
                        nb::handle labels_in, nb::handle masks_in, uint64_t seed,
                        const std::vector<std::string>& cfg_options) {
    const Tensor image = as_tensor(image_in), boxes = as_tensor(boxes_in), labels = as_tensor(labels_in);
    const std::optional<Tensor> masks = masks_in.is_none() ? std::nullopt : std::optional<Tensor>(as_tensor(masks_in));
    // What Detector.loss does up to the RoI head: the test pipeline and data preprocessor, a
    // Generator(seed), the model in training mode, TwoStageDetector::rpn_stage.
    GNDET_CHECK(image.dim() == 3 && image.size(2) == 3 && image.dtype() == kUInt8,
                "rpn_stage: expected an (H, W, 3) uint8 RGB image, got ", shape_str(image.shape()));
    const Json cfg = app::load_run_config(config, cfg_options);
    data::Sample s = data::make_sample(image.cpu().contiguous(), masks.has_value());
    s.gt_boxes = boxes.cpu().to(kFloat32).contiguous();
    s.gt_labels = labels.cpu().to(kInt64).contiguous();
    if (masks) s.gt_masks = masks->cpu().to(kUInt8).contiguous();
    Generator pipeline_rng(0);
    app::inference_pipeline(cfg).apply(s, pipeline_rng);
    std::vector<data::Sample> one;
    one.push_back(std::move(s));
    const int64_t divisor = app::loader_options(cfg, "test_dataloader", 0).pad_size_divisor;
    const Tensors params = model.parameters();
    const Device device = params.empty() ? Device(kCPU) : params.front().device();  // where the Detector put it
    const app::ModelInputs in = app::to_model_inputs(data::collate(std::move(one), divisor), device, true);
    Generator gen(seed);
    RpnStage st;
    const bool was_training = model.is_training();
    model.train();
    try {
      nb::gil_scoped_release release;
      st = model.rpn_stage(in.images, in.targets, in.infos, gen);
    } catch (...) {
      model.train(was_training);
      throw;
    }
    model.train(was_training);
    nb::dict out, losses, info;
    out["images"] = in.images;
    out["gt_boxes"] = in.targets[0].boxes, out["gt_labels"] = in.targets[0].labels;
    if (in.targets[0].masks.defined()) out["gt_masks"] = in.targets[0].masks;
    const ImageInfo& i = in.infos[0];
    info["img_shape"] = nb::make_tuple(i.height, i.width);
    info["pad_shape"] = nb::make_tuple(i.pad_height, i.pad_width);
    info["ori_shape"] = nb::make_tuple(i.ori_height, i.ori_width);
    info["scale"] = nb::make_tuple(i.scale_w, i.scale_h);
    out["info"] = info;
    out["feats"] = st.feats;
    for (const auto& [name, t] : st.losses) losses[name.c_str()] = t;
    out["losses"] = losses;
    out["proposals"] = st.proposals[0].boxes, out["proposal_scores"] = st.proposals[0].scores;
    out["generator_state"] = gen.state();
    return out;
  }, nb::arg("config"), nb::arg("model"), nb::arg("image"), nb::arg("boxes"), nb::arg("labels"),
  nb::arg("masks") = nb::none(), nb::arg("seed") = 0, nb::arg("cfg_options") = std::vector<std::string>(),
  "the first stage of Detector.loss(image, boxes, labels, masks, seed) for the model built from `config`: the "
  "network input (images, gt_* and info at its size), the FPN features, loss_rpn_cls and loss_rpn_bbox, the "
  "proposals the RoI head trains on, and the generator_state the RoI head's sampler continues from");
}

}  // namespace gndet::py
