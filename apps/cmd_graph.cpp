// gndet graph: the autograd graph of one step of a config's model, as Graphviz DOT (and SVG when
// Graphviz is installed).
#include <spawn.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "apps/args.h"
#include "apps/commands.h"
#include "apps/experiment.h"
#include "apps/graph_dot.h"
#include "apps/synthetic.h"
#include "autograd/trace.h"
#include "ops/elementwise.h"
#include "tensor/factory.h"
#include "tensor/safetensors.h"

extern char** environ;

namespace gndet::app {
namespace {

namespace fs = std::filesystem;

template <class M>
std::shared_ptr<M> child(nn::Module& m, const std::string& name) {
  for (const auto& [n, c] : m.named_children()) {
    if (n == name) return std::dynamic_pointer_cast<M>(c);
  }
  throw Error("gndet graph: the model has no child '" + name + "'");
}

// Runs `dot -Tsvg in -o out` without a shell. Returns "" on success, else why not.
std::string render_svg(const std::string& dot_path, const std::string& svg_path) {
  std::vector<std::string> argv_s = {"dot", "-Tsvg", dot_path, "-o", svg_path};
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid;
  if (posix_spawnp(&pid, "dot", nullptr, nullptr, argv.data(), environ) != 0) {
    return "Graphviz 'dot' was not found: install it (Debian: apt-get install graphviz) for an SVG, or render the "
           ".dot file elsewhere";
  }
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) return "'dot -Tsvg' failed on " + dot_path;
  return "";
}

int run_graph(const Args& args) {
  ArgParser p("gndet graph",
              "Writes the autograd graph of one step of CONFIG's model on a synthetic image: the ops backward will\n"
              "run (output shapes and dtypes, the tensors each saved for backward and their bytes), clustered by\n"
              "module name, and the parameters they reach. --mode train records the full loss (RPN, sampling,\n"
              "RoI heads); --mode infer the part of inference that runs with autograd on (backbone, neck, RPN\n"
              "head: the second stage of predict() runs under no-grad and builds no graph). Also renders an SVG\n"
              "next to the .dot file when Graphviz 'dot' is installed.");
  p.positional("CONFIG", "a model config")
      .option("--out", "FILE.dot", "where to write the graph", "step.dot")
      .option("--mode", "MODE", "train or infer", "train")
      .option("--only", "MODULE", "draw only this module's ops (e.g. backbone.layer1.0); neighbours show dashed")
      .option("--size", "PIXELS", "side of the synthetic square image (a multiple of 32)", "128")
      .flag("--no-svg", "do not call Graphviz")
      .multi("--cfg-options", "KEY=VALUE", "override config entries")
      .example("gndet graph configs/tests/mask-rcnn_tiny_gn.json --out step.dot")
      .example("gndet graph configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json --only backbone.layer1.0 --out block.dot");
  if (!p.parse(args)) {
    std::cout << p.help();
    return 0;
  }
  const std::string mode = p.get("--mode");
  if (mode != "train" && mode != "infer") throw UsageError("gndet graph --mode: expected train or infer, got '" + mode + "'");
  const int64_t size = p.get_int("--size");
  if (size < 32 || size % 32 != 0) throw UsageError("gndet graph --size: expected a multiple of 32, got " + p.get("--size"));
  const std::string out = p.get("--out");

  const Json cfg = load_run_config(p.get("CONFIG"), p.list("--cfg-options"));
  std::string note;
  auto model = build_model(cfg, 0, kCPU, &note);
  if (!note.empty()) std::printf("%s\n", note.c_str());
  const SyntheticBatch batch = synthetic_batch(size, size, model->num_classes(), model->with_mask());

  DotOptions opts;
  for (const auto& [name, t] : model->named_parameters()) opts.leaf_names[&t.impl()] = name;
  opts.only = p.get("--only");
  if (!opts.only.empty()) {
    bool found = false;
    for (const auto& [name, m] : model->named_modules()) found = found || name == opts.only;
    if (!found) throw UsageError("gndet graph --only: the model has no module '" + opts.only + "'");
  }
  opts.title = fs::path(p.get("CONFIG")).filename().string() + ", " + mode + " step, one " + std::to_string(size) +
               " x " + std::to_string(size) + " image" + (opts.only.empty() ? "" : ", module " + opts.only);

  GraphSummary summary;
  std::string dot;
  {
    autograd::TraceGuard trace;
    nn::ModuleNames names(*model);
    Tensors roots;
    if (mode == "train") {
      model->train();
      Generator gen(1);
      roots.push_back(total_loss(model->loss(batch.images, batch.targets, batch.infos, gen)));
    } else {
      model->eval();
      const auto feats = child<FPN>(*model, "neck")->forward(child<ResNet>(*model, "backbone")->forward(batch.images));
      const RpnOutputs rpn = child<RPNHead>(*model, "rpn_head")->forward(feats);
      roots.insert(roots.end(), rpn.cls.begin(), rpn.cls.end());
      roots.insert(roots.end(), rpn.reg.begin(), rpn.reg.end());
    }
    dot = autograd_graph_dot(roots, opts, &summary);
  }
  if (fs::path(out).has_parent_path()) fs::create_directories(fs::path(out).parent_path());
  write_file_atomic(out, dot);
  std::printf("wrote %s: %lld ops, %lld parameters, %lld edges\n", out.c_str(), static_cast<long long>(summary.ops),
              static_cast<long long>(summary.leaves), static_cast<long long>(summary.edges));
  std::printf("saved for backward: %lld tensors in %s of distinct buffers", static_cast<long long>(summary.saved_tensors),
              human_bytes(summary.saved_bytes).c_str());
  std::string by;
  for (const auto& [m, bytes] : summary.saved_bytes_by_module) by += " " + (m.empty() ? "(no module)" : m) + " " + human_bytes(bytes) + ",";
  if (!by.empty()) std::printf(" (%s)", by.substr(1, by.size() - 2).c_str());
  std::printf("\n");
  if (summary.ops == 0 && !opts.only.empty()) {
    std::printf("note: no op of '%s' is in the graph: it recorded nothing for backward (frozen parameters, e.g. "
                "backbone.frozen_stages, and an input that needs no gradient)\n", opts.only.c_str());
  }
  if (!p.has("--no-svg")) {
    const std::string svg = (fs::path(out).extension() == ".dot" ? fs::path(out).replace_extension(".svg")
                                                                 : fs::path(out + ".svg")).string();
    const std::string why = render_svg(out, svg);
    std::printf("%s\n", why.empty() ? ("wrote " + svg).c_str() : why.c_str());
  }
  return 0;
}

}  // namespace

GNDET_COMMAND("graph", "write the autograd graph of one training (or inference) step as DOT / SVG", run_graph);

}  // namespace gndet::app
