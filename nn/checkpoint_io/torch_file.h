// PyTorch and pickle checkpoints, read without Python.
//
// Containers:
//   PyTorch zip (torch.save since 1.6): <prefix>/data.pkl (the object, storages as persistent ids
//     ('storage', torch.FloatStorage, key, location, numel)), <prefix>/data/<key> (raw little-endian
//     storages), <prefix>/byteorder, <prefix>/version.
//   PyTorch legacy (_use_new_zipfile_serialization=False): pickles of the magic number
//     0x1950a86a20f9469cfc6c, the protocol version 1001, sys_info, the object, the sorted list of
//     storage keys; then each storage as an 8-byte little-endian element count and its bytes.
//   A plain pickle (.pkl: detectron2, Detectron / Caffe2, Python 2 or 3) holding numpy arrays.
// Layouts of the object:
//   mmengine / mmdetection 2.x-3.x: {"meta", "state_dict", "optimizer", "message_hub", ...}
//   a bare state_dict (OrderedDict name -> tensor)
//   detectron2: {"model": {name: ndarray}, "__author__", "matching_heuristics", ...}
//   Detectron / Caffe2: {"blobs": {name: ndarray}} or flat {name: ndarray}; "*_momentum" dropped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "nn/checkpoint_io/pickle.h"
#include "nn/module.h"

namespace gndet::nn::ckpt {

struct PickledCheckpoint {
  std::string container;  // "pytorch zip", "pytorch legacy", "pickle"
  ValuePtr root;          // the unpickled object; its tensors are filled but not yet copied
};

// Parses the container held in `bytes` (`what` names it in messages).
PickledCheckpoint parse_pickled_checkpoint(std::string_view bytes, const std::string& what);

struct ForeignWeights {
  std::string container;
  std::string layout;  // "mmengine", "state_dict", "detectron2", "detectron"
  NamedTensors tensors;               // the weights, in file order, under the file's own names
  std::vector<std::string> skipped;   // entries that are not weights (top-level keys, momenta, ...)
};

// The weights of a parsed checkpoint, copied into gndet tensors.
ForeignWeights extract_weights(const PickledCheckpoint& checkpoint, const std::string& what);

// parse + extract from memory: the entry point for fuzzing. Throws gndet::Error on any bad input.
ForeignWeights parse_checkpoint_buffer(std::string_view bytes, const std::string& what);

// Reads a file whole and parses it.
ForeignWeights read_foreign_checkpoint(const std::string& path);

// True when the file starts like a ZIP archive or a binary pickle (protocol 2+), i.e. something
// read_foreign_checkpoint should be given rather than the safetensors reader.
bool looks_like_pickled_checkpoint(const std::string& path);

std::string read_whole_file(const std::string& path);

}  // namespace gndet::nn::ckpt
