#include "nn/checkpoint_io/zoo.h"

#include <cstdlib>
#include <filesystem>

#include "tensor/error.h"

namespace gndet::nn::ckpt {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

std::string home() { return env_or("HOME", "."); }

// "openmmlab://x" is mmengine's other spelling of "open-mmlab://x".
std::string canonical(const std::string& s) {
  if (s.rfind("openmmlab://", 0) == 0) return "open-mmlab://" + s.substr(12);
  return s;
}

}  // namespace

const std::vector<ZooEntry>& zoo_entries() {
  // The GN and GN+WS ImageNet backbones of mmdetection's GN / GN+WS configs.
  static const std::vector<ZooEntry> entries = {
      {"open-mmlab://detectron/resnet50_gn", "https://download.openmmlab.com/pretrain/third_party/resnet50_gn-9186a21c.pth"},
      {"open-mmlab://detectron/resnet101_gn", "https://download.openmmlab.com/pretrain/third_party/resnet101_gn-cac0ab98.pth"},
      {"open-mmlab://contrib/resnet50_gn", "https://download.openmmlab.com/pretrain/third_party/resnet50_gn_thangvubk-ad1730dd.pth"},
      {"open-mmlab://jhu/resnet50_gn_ws", "https://download.openmmlab.com/pretrain/third_party/resnet50_gn_ws-15beedd8.pth"},
      {"open-mmlab://jhu/resnet101_gn_ws", "https://download.openmmlab.com/pretrain/third_party/resnet101_gn_ws-3e3c308c.pth"},
      {"open-mmlab://jhu/resnext50_32x4d_gn_ws",
       "https://download.openmmlab.com/pretrain/third_party/resnext50_32x4d_gn_ws-0d87ac85.pth"},
      {"open-mmlab://jhu/resnext101_32x4d_gn_ws",
       "https://download.openmmlab.com/pretrain/third_party/resnext101_32x4d_gn_ws-34ac1a9e.pth"},
      // mmengine: torchvision's ImageNet weights (IMAGENET1K_V1), used by the BN baselines
      {"torchvision://resnet50", "https://download.pytorch.org/models/resnet50-0676ba61.pth"},
  };
  return entries;
}

bool is_zoo_name(const std::string& c) { return c.find("://") != std::string::npos; }

std::vector<std::string> zoo_search_dirs() {
  return {env_or("GNDET_HOME", home() + "/.cache/gndet/checkpoints"),
          env_or("TORCH_HOME", home() + "/.cache/torch") + "/hub/checkpoints"};
}

std::string resolve_zoo_checkpoint(const std::string& checkpoint) {
  const std::string name = canonical(checkpoint);
  const ZooEntry* entry = nullptr;
  for (const ZooEntry& e : zoo_entries()) {
    if (name == e.name) entry = &e;
  }
  if (entry == nullptr) {
    std::string known;
    for (const ZooEntry& e : zoo_entries()) known += std::string(known.empty() ? "" : ", ") + e.name;
    GNDET_FAIL("unknown zoo checkpoint '", checkpoint, "' (gndet knows ", known,
               "; or give the path of a local .pth / .pkl / .safetensors file)");
  }
  const std::string url = entry->url;
  const std::string file = url.substr(url.rfind('/') + 1);
  const std::vector<std::string> dirs = zoo_search_dirs();
  for (const std::string& d : dirs) {
    const std::filesystem::path p = std::filesystem::path(d) / file;
    if (std::filesystem::is_regular_file(p)) return p.string();
  }
  GNDET_FAIL("pretrained weights '", checkpoint, "' are not on this machine: gndet never downloads. Download ", url,
             " and put ", file, " into ", dirs[0], " (set GNDET_HOME to use another folder) or ", dirs[1],
             " (mmengine's own cache)");
}

std::string resolve_checkpoint_path(const std::string& checkpoint) {
  if (is_zoo_name(checkpoint)) return resolve_zoo_checkpoint(checkpoint);
  if (std::filesystem::exists(checkpoint)) return checkpoint;
  const std::filesystem::path given(checkpoint);
  for (const std::string& d : zoo_search_dirs()) {
    for (const std::filesystem::path& p : {std::filesystem::path(d) / given, std::filesystem::path(d) / given.filename()}) {
      if (std::filesystem::is_regular_file(p)) return p.string();
    }
  }
  return checkpoint;
}

}  // namespace gndet::nn::ckpt
