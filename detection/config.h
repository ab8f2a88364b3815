// Configs: mmdetection's config dicts written as JSON.
//
//   {"_base_": ["../_base_/models/mask-rcnn_r50_fpn.json", ...], "model": {"backbone": {...}}}
//
// Loading merges the bases in order (paths relative to the file), then the file's own keys over
// them: objects merge key by key, everything else replaces; an object with "_delete_": true
// replaces instead of merging (as in mmengine). Overrides "a.b.0.c=value" (--cfg-options) must
// name an existing key; the value is read as JSON when it parses (3, 0.1, true, [1, 2],
// {"x": 1}, "text"), else taken as a string.
//
// ConfigNode gives typed, path-aware access: errors read like
//   "config model.backbone.depth: expected an integer, got \"fifty\"".
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gndet {

using Json = nlohmann::json;

// Reads `path` with its _base_ chain resolved. Throws gndet::Error naming the file on unreadable
// files, bad JSON (with the line), missing bases and inheritance cycles.
Json load_config(const std::string& path);
// Applies one "key.path=value" override; throws naming the key when it does not exist.
void apply_config_override(Json& cfg, const std::string& assignment);

class ConfigNode {
 public:
  ConfigNode(const Json& json, std::string path) : json_(&json), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  const Json& json() const { return *json_; }
  bool has(const std::string& key) const;
  bool is_null() const { return json_->is_null(); }
  ConfigNode operator[](const std::string& key) const;  // throws when missing
  ConfigNode at(size_t index) const;                   // list element
  size_t size() const;                                  // list length

  int64_t as_int() const;
  int64_t as_int(int64_t lo, int64_t hi) const;  // range-checked: "expected an integer >= 1, got 0"
  double as_double() const;  // accepts integers too
  bool as_bool() const;
  std::string as_string() const;
  std::vector<int64_t> as_int_list() const;
  std::vector<double> as_double_list() const;

  // With defaults, for optional keys.
  int64_t get_int(const std::string& key, int64_t fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // The "type" field, checked against the accepted values.
  std::string type(const std::vector<std::string>& accepted) const;

 private:
  [[noreturn]] void fail(const std::string& what) const;
  const Json* json_;
  std::string path_;
};

}  // namespace gndet
