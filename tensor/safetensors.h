// safetensors I/O: 8-byte little-endian header length N, N bytes of JSON header
// {"__metadata__": {str: str}, name: {"dtype": "F32", "shape": [...], "data_offsets": [b, e]}},
// then the raw little-endian data (offsets relative to its start). The file is written to a
// temporary name and renamed, so a crash never leaves a half-written file under the real name.
#pragma once

#include <map>
#include <string>

#include "tensor/tensor.h"

namespace gndet {

struct SafetensorsFile {
  std::map<std::string, Tensor> tensors;  // on the CPU, contiguous
  std::map<std::string, std::string> metadata;
};

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
// Throws gndet::Error naming the file and what is wrong (truncated, bad JSON, bad offsets, ...).
SafetensorsFile load_safetensors(const std::string& path);

// Throws gndet::Error "<what> '<path>' is a directory, not a file" (or "is not a regular file",
// for devices such as /dev/zero that would never end) unless `path` is missing or a regular file;
// a missing file is left to the caller's open, whose error names it.
void check_not_special_file(const std::string& path, const std::string& what);

// Writes `bytes` to `path` atomically: temporary file in the same folder, flush, rename.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace gndet
