// Replays every fuzz target (tests/fuzz/targets.list) on its committed seeds
// (tests/fuzz/corpus/<name>/) and on every crash found so far (tests/fuzz/reproducers/<name>/),
// in the ordinary test binary: a regression there fails here, with or without clang. Under
// tools/sanitize the same replay runs with ASan + UBSan.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gndet_config.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/support.h"

using namespace gndet;
namespace fs = std::filesystem;

namespace {

const fs::path kFuzzDir = fs::path(GNDET_SOURCE_DIR) / "tests" / "fuzz";

std::vector<std::string> listed_targets() {
  std::ifstream in(kFuzzDir / "targets.list");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name;
    if (words >> name && name[0] != '#') names.push_back(name);
  }
  return names;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

}  // namespace

TEST_CASE("every listed fuzz target is built into the replay", "[robust][fuzz]") {
  std::vector<std::string> registered;
  for (const auto& [name, body] : fuzz::registry()) registered.push_back(name);
  std::vector<std::string> listed = listed_targets();
  std::sort(listed.begin(), listed.end());
  CHECK(registered == listed);
  CHECK(listed.size() >= 6);
}

TEST_CASE("fuzz corpus and reproducers replay without a finding", "[robust][fuzz]") {
  for (const auto& [name, body] : fuzz::registry()) {
    int replayed = 0;
    for (const char* kind : {"corpus", "reproducers"}) {
      const fs::path dir = kFuzzDir / kind / name;
      if (!fs::is_directory(dir)) continue;
      for (const auto& entry : fs::directory_iterator(dir)) {
        if (!entry.is_regular_file()) continue;
        INFO(name << ": " << entry.path().string());
        try {
          fuzz::run_one(body, read_bytes(entry.path()));
        } catch (const std::exception& e) {
          FAIL_CHECK("finding: " << e.what());
        }
        ++replayed;
      }
    }
    INFO(name);
    CHECK(replayed > 0);  // every target has seeds
  }
}
