// gndet convert: zoo checkpoints in (.pth / .pkl -> safetensors of gndet names) and out
// (safetensors -> a .pth zip that torch.load and mmengine's load_checkpoint read).
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/experiment.h"
#include "gndet_config.h"
#include "nn/checkpoint.h"
#include "nn/checkpoint_io/name_map.h"
#include "nn/checkpoint_io/torch_file.h"
#include "nn/checkpoint_io/torch_save.h"
#include "tensor/safetensors.h"

namespace gndet::app {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string first_few(const std::vector<std::string>& v, size_t n = 8) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < n; ++i) s += (i ? ", " : "") + v[i];
  if (v.size() > n) s += ", ... (" + std::to_string(v.size()) + " in all)";
  return s;
}

// With --config: the converted weights against the model the config builds. Unexpected keys and
// shape mismatches are errors; missing keys are listed (a backbone-only file misses the rest).
void check_against_config(const nn::StateDict& weights, const std::string& config, const std::vector<std::string>& opts) {
  const Json cfg = load_run_config(config, opts);
  auto model = build_model(cfg, 0, kCPU, nullptr);
  const nn::LoadReport r = model->compare_state_dict(weights);
  std::cout << "against " << config << ": " << weights.size() - r.unexpected.size() - r.mismatched.size()
            << " tensors match";
  if (!r.missing.empty()) std::cout << "; missing " << r.missing.size() << ": " << first_few(r.missing);
  std::cout << "\n";
  GNDET_CHECK(r.unexpected.empty() && r.mismatched.empty(), "the converted weights do not fit the model of '", config,
              "': ", nn::LoadReport{{}, r.unexpected, r.mismatched}.str());
}

int run_convert(const Args& args) {
  ArgParser p("gndet convert",
              "Converts checkpoints between the zoo's formats and gndet's.\n"
              "  IN .pth / .pkl / .safetensors, OUT .safetensors: the weights under gndet's (= mmdetection's) names,\n"
              "    renamed from mmdetection, Detectron (Caffe2 blobs, classes background-first) or detectron2.\n"
              "  IN .safetensors (or a gndet checkpoint), OUT .pth: a PyTorch zip checkpoint\n"
              "    {\"meta\": ..., \"state_dict\": OrderedDict} that torch.load and mmdetection's load_checkpoint read.");
  p.positional("IN", "checkpoint to read")
      .positional("OUT", "file to write (.safetensors, or .pth / .pt); written to a temporary name, then renamed")
      .option("--from", "SOURCE", "naming of IN: mmdet, detectron, detectron2 or auto (by its keys)", "auto")
      .option("--config", "CONFIG", "check the converted weights against this config's model")
      .multi("--cfg-options", "KEY=VALUE", "override config entries (with --config)")
      .example("gndet convert R-101-GN.pkl r101_gn.safetensors --from detectron")
      .example("gndet convert mask_rcnn_r50_fpn_gn-all_2x_coco.pth m.safetensors --config "
               "configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json")
      .example("gndet convert work_dirs/run/latest.safetensors model.pth");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  const std::string in = p.get("IN"), out = p.get("OUT");
  const nn::ckpt::NameSource source = nn::ckpt::parse_name_source(p.get("--from"));
  nn::StateDict weights;
  if (nn::ckpt::looks_like_pickled_checkpoint(in)) {
    const nn::ckpt::ForeignWeights foreign = nn::ckpt::read_foreign_checkpoint(in);
    const nn::ckpt::MappedWeights mapped = nn::ckpt::map_names(foreign.tensors, source);
    std::cout << in << ": " << foreign.container << ", " << foreign.layout << " layout, " << foreign.tensors.size()
              << " tensors; names from " << nn::ckpt::name_source_str(mapped.source) << "\n";
    if (!foreign.skipped.empty()) std::cout << "  not weights, skipped: " << first_few(foreign.skipped) << "\n";
    if (!mapped.dropped.empty()) std::cout << "  dropped on purpose: " << first_few(mapped.dropped) << "\n";
    GNDET_CHECK(mapped.unmapped.empty(), "'", in, "': ", mapped.unmapped.size(), " keys have no gndet name under the ",
                nn::ckpt::name_source_str(mapped.source), " mapping: ", first_few(mapped.unmapped, 20),
                " (another --from?)");
    weights = mapped.tensors;
  } else {
    GNDET_CHECK(source == nn::ckpt::NameSource::Auto || source == nn::ckpt::NameSource::MMDet, "--from ",
                p.get("--from"), " does not apply to a safetensors input (its names are gndet's)");
    weights = nn::load_state_dict_from_file(in);
    std::cout << in << ": safetensors, " << weights.size() << " tensors\n";
  }
  if (p.has("--config")) check_against_config(weights, p.get("--config"), p.list("--cfg-options"));
  if (ends_with(out, ".pth") || ends_with(out, ".pt")) {
    nn::ckpt::save_torch_checkpoint(out, weights, {{"converted_by", std::string("gndet ") + GNDET_VERSION}, {"source", in}});
  } else {
    GNDET_CHECK(ends_with(out, ".safetensors"), "OUT '", out, "' must end in .safetensors, .pth or .pt");
    save_safetensors(out, weights, {{"converted_by", std::string("gndet ") + GNDET_VERSION}, {"source", in}});
  }
  std::cout << "wrote " << out << " (" << weights.size() << " tensors)\n";
  return 0;
}

}  // namespace

GNDET_COMMAND("convert", "checkpoints in and out: .pth / .pkl -> safetensors, safetensors -> .pth", run_convert);

}  // namespace gndet::app
