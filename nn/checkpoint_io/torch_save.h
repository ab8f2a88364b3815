// Writes a PyTorch zip checkpoint that torch.load and mmengine's load_checkpoint read:
//   {"meta": {str: str}, "state_dict": OrderedDict(name -> tensor)}
// as a protocol-2 pickle (tensors through torch._utils._rebuild_tensor_v2 and persistent ids
// ('storage', torch.FloatStorage, key, 'cpu', numel)) in archive/data.pkl, one stored entry per
// tensor in archive/data/<key>, archive/byteorder "little" and archive/version "3". The file is
// written to a temporary name and renamed.
#pragma once

#include <map>
#include <string>

#include "nn/module.h"

namespace gndet::nn::ckpt {

std::string torch_checkpoint_bytes(const StateDict& state, const std::map<std::string, std::string>& meta);
void save_torch_checkpoint(const std::string& path, const StateDict& state,
                           const std::map<std::string, std::string>& meta);

}  // namespace gndet::nn::ckpt
