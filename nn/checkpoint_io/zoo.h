// Pretrained weights by their zoo names, as mmdetection configs name them in init_cfg
// (checkpoint='open-mmlab://detectron/resnet50_gn'). gndet never downloads: a name resolves to a
// local file under the file name mmengine's cache uses (the last part of its URL), searched in
//   $GNDET_HOME (default ~/.cache/gndet/checkpoints), then $TORCH_HOME/hub/checkpoints (default
//   ~/.cache/torch/hub/checkpoints, where mmengine itself stores downloads).
// When absent, the error names the file, the URL to download it from and the folders to put it in.
#pragma once

#include <string>
#include <vector>

namespace gndet::nn::ckpt {

struct ZooEntry {
  const char* name;  // "open-mmlab://detectron/resnet50_gn" ("openmmlab://" is accepted too)
  const char* url;   // mmengine/hub/openmmlab.json (mmengine 0.10.7)
};
const std::vector<ZooEntry>& zoo_entries();

bool is_zoo_name(const std::string& checkpoint);  // "scheme://...": open-mmlab://, torchvision://
std::vector<std::string> zoo_search_dirs();
// The local file for a zoo name; throws gndet::Error (file, URL, folders) when it is not there.
std::string resolve_zoo_checkpoint(const std::string& checkpoint);
// What a config's checkpoint names: a zoo name as above; an existing path as is; else a relative
// path (configs/detectron's "detectron/R-50-GN.pkl") looked up in the same folders, by its path
// and by its file name; else the name unchanged (the caller reports it as absent).
std::string resolve_checkpoint_path(const std::string& checkpoint);

}  // namespace gndet::nn::ckpt
