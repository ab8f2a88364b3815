// Reading TensorBoard event files back in tests: the record framing with its CRCs checked, and
// the few Event / Summary fields gndet writes (apps/tensorboard.h), decoded independently of the
// writer; plus TensorBoard's own reader through tools/reference/read_tfevents.py when the
// `tensorboard` Python package is importable.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/tensorboard.h"
#include "gndet_config.h"
#include "tests/support.h"

namespace gndet::test {

struct TfValue {
  int64_t step = 0;
  std::string tag;
  bool is_image = false;
  double value = 0;      // scalars
  int64_t width = 0, height = 0;
  std::string png;       // images
};

struct TfFile {
  std::string file_version;
  std::vector<TfValue> values;
  std::string error;  // first problem found, empty when the file is well formed
};

namespace tf_detail {
struct Reader {
  const std::string& s;
  size_t at, end;
  bool ok() const { return at <= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; at < end && shift < 64; shift += 7) {
      const auto b = static_cast<uint8_t>(s[at++]);
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    at = end + 1;  // malformed
    return 0;
  }
  template <class T>
  T fixed() {
    T v{};
    if (at + sizeof(T) > end) {
      at = end + 1;
      return v;
    }
    std::memcpy(&v, s.data() + at, sizeof(T));
    at += sizeof(T);
    return v;
  }
  std::string bytes() {
    const uint64_t n = varint();
    if (at + n > end) {
      at = end + 1;
      return {};
    }
    std::string b = s.substr(at, n);
    at += n;
    return b;
  }
  void skip(int wire) {
    if (wire == 0) varint();
    else if (wire == 1) fixed<uint64_t>();
    else if (wire == 2) bytes();
    else if (wire == 5) fixed<uint32_t>();
    else at = end + 1;
  }
};

inline void parse_value(const std::string& v, int64_t step, TfFile& f) {
  Reader r{v, 0, v.size()};
  TfValue out;
  out.step = step;
  while (r.ok() && r.at < r.end) {
    const uint64_t k = r.varint();
    const int field = static_cast<int>(k >> 3), wire = static_cast<int>(k & 7);
    if (field == 1 && wire == 2) out.tag = r.bytes();
    else if (field == 2 && wire == 5) out.value = r.fixed<float>();
    else if (field == 4 && wire == 2) {
      out.is_image = true;
      const std::string img = r.bytes();
      Reader ir{img, 0, img.size()};
      while (ir.ok() && ir.at < ir.end) {
        const uint64_t ik = ir.varint();
        const int ifield = static_cast<int>(ik >> 3), iwire = static_cast<int>(ik & 7);
        if (ifield == 1 && iwire == 0) out.height = static_cast<int64_t>(ir.varint());
        else if (ifield == 2 && iwire == 0) out.width = static_cast<int64_t>(ir.varint());
        else if (ifield == 4 && iwire == 2) out.png = ir.bytes();
        else ir.skip(iwire);
      }
    } else r.skip(wire);
  }
  f.values.push_back(out);
}
}  // namespace tf_detail

inline TfFile read_tfevents(const std::string& path) {
  TfFile f;
  std::ifstream in(path, std::ios::binary);
  const std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  size_t at = 0;
  auto fail = [&](const std::string& why) {
    f.error = why + " at byte " + std::to_string(at);
    return f;
  };
  while (at < s.size()) {
    uint64_t len;
    uint32_t len_crc, data_crc;
    if (at + 12 > s.size()) return fail("truncated record header");
    std::memcpy(&len, s.data() + at, 8);
    std::memcpy(&len_crc, s.data() + at + 8, 4);
    if (len_crc != app::masked_crc32c(s.data() + at, 8)) return fail("bad length CRC");
    if (at + 12 + len + 4 > s.size()) return fail("truncated record");
    const std::string data = s.substr(at + 12, len);
    std::memcpy(&data_crc, s.data() + at + 12 + len, 4);
    if (data_crc != app::masked_crc32c(data.data(), data.size())) return fail("bad data CRC");
    at += 12 + len + 4;
    tf_detail::Reader r{data, 0, data.size()};
    int64_t step = 0;
    std::vector<std::string> summaries;
    while (r.ok() && r.at < r.end) {
      const uint64_t k = r.varint();
      const int field = static_cast<int>(k >> 3), wire = static_cast<int>(k & 7);
      if (field == 2 && wire == 0) step = static_cast<int64_t>(r.varint());
      else if (field == 3 && wire == 2) f.file_version = r.bytes();
      else if (field == 5 && wire == 2) summaries.push_back(r.bytes());
      else r.skip(wire);
    }
    if (!r.ok()) return fail("malformed Event");
    for (const std::string& sum : summaries) {
      tf_detail::Reader sr{sum, 0, sum.size()};
      while (sr.ok() && sr.at < sr.end) {
        const uint64_t k = sr.varint();
        if ((k >> 3) == 1 && (k & 7) == 2) tf_detail::parse_value(sr.bytes(), step, f);
        else sr.skip(static_cast<int>(k & 7));
      }
    }
  }
  return f;
}

// The event files in a folder.
inline std::vector<std::string> tfevents_files(const std::string& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().filename().string().find("tfevents") != std::string::npos) files.push_back(e.path().string());
  }
  return files;
}

inline bool have_tensorboard() {
  return std::system("python3 -c 'import tensorboard.backend.event_processing.event_file_loader' >/dev/null 2>&1") == 0;
}

// TensorBoard's reader on `path`: the JSON of tools/reference/read_tfevents.py, or null with the
// output in *log when it failed.
inline nlohmann::json tensorboard_read(const std::string& path, std::string* log) {
  const std::string cmd = "python3 '" + std::string(GNDET_SOURCE_DIR) + "/tools/reference/read_tfevents.py' '" + path +
                          "' 2>&1";
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(popen(cmd.c_str(), "r"), pclose);
  std::string out;
  if (pipe) {
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, pipe.get())) > 0) out.append(buf, n);
  }
  if (log) *log = out;
  return nlohmann::json::accept(out) ? nlohmann::json::parse(out) : nlohmann::json();
}

}  // namespace gndet::test

namespace gndet::test {

// The event file `gndet train` left in work_dir/tf_logs: train scalars, the val AP and the
// predictions picture, by our decoder and (when installed) by TensorBoard's reader.
inline void check_training_tfevents(const std::string& tf_logs) {
  const std::vector<std::string> files = tfevents_files(tf_logs);
  REQUIRE(files.size() == 1);
  const TfFile f = read_tfevents(files[0]);
  REQUIRE(f.error.empty());
  CHECK(f.file_version == "brain.Event:2");
  std::map<std::string, int> count;
  for (const TfValue& v : f.values) {
    ++count[v.tag];
    if (!v.is_image) CHECK(std::isfinite(v.value));
    if (v.is_image) CHECK(v.png.substr(1, 3) == "PNG");
  }
  for (const char* tag : {"train/loss", "train/loss_rpn_cls", "train/loss_mask", "train/lr", "val/coco/bbox_mAP",
                          "val/coco/segm_mAP", "val/predictions"}) {
    INFO(tag);
    CHECK(count[tag] >= 1);
  }
  if (!have_tensorboard()) {
    WARN("the Python package 'tensorboard' is not importable: TensorBoard's reader was not run on " << files[0]);
    return;
  }
  std::string log;
  const nlohmann::json j = tensorboard_read(files[0], &log);
  INFO(log);
  REQUIRE(j.is_object());
  CHECK(j["file_version"] == "brain.Event:2");
  CHECK(j["scalars"]["train/loss"].size() == static_cast<size_t>(count["train/loss"]));
  CHECK(j["images"]["val/predictions"].size() == static_cast<size_t>(count["val/predictions"]));
}

}  // namespace gndet::test
