// Running the gndet binary from tests: exit code and combined output.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>
#include <unistd.h>

#include "gndet_config.h"

namespace gndet::test {

struct Run {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line: exit code and stdout + stderr together.
inline Run run_shell(const std::string& cmd) {
  Run r;
  std::FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline Run run_gndet(const std::string& args) { return run_shell(std::string(GNDET_BUILD_DIR) + "/apps/gndet " + args); }

// A fresh folder under the system's temp directory, removed when the object dies.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& name)
      : path(std::filesystem::temp_directory_path() / ("gndet_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string str() const { return path.string(); }
};

// The tiny GN Mask R-CNN config of the CLI tests (it trains on a dataset made by make-shapes).
inline const std::string kTinyShapesConfig = std::string(GNDET_SOURCE_DIR) + "/configs/tests/mask-rcnn_tiny_shapes.json";

// --cfg-options that point the tiny config at a dataset in `data` (more KEY=VALUE may follow).
inline std::string data_options(const std::string& data) {
  std::string o = " --cfg-options";
  for (const char* loader : {"train_dataloader", "val_dataloader", "test_dataloader"}) {
    o += std::string(" ") + loader + ".dataset.data_root=" + data + "/";
  }
  return o;
}

// A config inheriting the tiny one, with `extra` (JSON object members) over it.
inline std::string derived_config(const TempDir& dir, const std::string& name, const std::string& extra) {
  const std::string path = dir.str() + "/" + name + ".json";
  std::ofstream(path) << "{\"_base_\": \"" << kTinyShapesConfig << "\", " << extra << "}";
  return path;
}

// The train records of a scalars.json (start and val records are left out).
inline std::vector<nlohmann::json> read_train_scalars(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j["mode"] == "train") out.push_back(std::move(j));
  }
  return out;
}

}  // namespace gndet::test
