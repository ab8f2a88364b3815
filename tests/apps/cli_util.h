// Running the gndet binary from tests: exit code and combined output.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
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

}  // namespace gndet::test
