// Configs and JSON inputs, read once with their paths. One module for every JSON that gndet reads:
// mmdetection's config dicts (model, data pipelines, schedules, hooks) and the COCO annotation and
// result files.
//
//   {"_base_": ["../_base_/models/mask-rcnn_r50_fpn.json", ...], "model": {"backbone": {...}}}
//
// Loading merges the bases in order (paths relative to the file), then the file's own keys over
// them: objects merge key by key, everything else replaces; an object with "_delete_": true
// replaces instead of merging (as in mmengine). Overrides "a.b.0.c=value" (--cfg-options) must
// name an existing key; the value is read as JSON when it parses (3, 0.1, true, [1, 2],
// {"x": 1}, "text"), else taken as a string.
//
// ConfigNode gives typed, path-aware access. In a config, errors read
//   "config model.backbone.depth: expected an integer, got \"fifty\""
// and in a JSON file (a node made with the file's name as `source`)
//   "instances_val.json: annotations[12].bbox: expected 4 numbers, got [1,2,3]".
// A section read into options lists its keys with check_keys(), so a misspelt key is an error
// naming its path instead of a silently ignored setting.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace gndet {

using Json = nlohmann::json;

// The file's bytes; `what` names the kind of file in the error ("cannot open COCO results file ...").
std::string read_text_file(const std::string& path, const char* what);
// Reads and parses a JSON file; errors name the file (and the line of a syntax error).
Json read_json_file(const std::string& path, const char* what);

// Reads `path` with its _base_ chain resolved. Throws gndet::Error naming the file on unreadable
// files, bad JSON (with the line), missing bases and inheritance cycles.
Json load_config(const std::string& path);
// Applies one "key.path=value" override; throws naming the key when it does not exist.
void apply_config_override(Json& cfg, const std::string& assignment);

class ConfigNode {
 public:
  // A config section at `path` ("model.backbone"; "" for the whole config).
  ConfigNode(const Json& json, std::string path) : json_(&json), path_(std::move(path)) {}
  // A field of the JSON file `source` (its name, which must outlive the node).
  ConfigNode(const Json& json, const std::string& source, std::string path)
      : json_(&json), source_(&source), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  const Json& json() const { return *json_; }
  bool has(const std::string& key) const { return json_->is_object() && json_->contains(key); }
  bool is_null() const { return json_->is_null(); }
  ConfigNode operator[](const std::string& key) const;  // required member of an object
  ConfigNode at(size_t index) const;                   // element of a list (index < size())
  size_t size() const;                                  // length of a list (throws for non-lists)

  int64_t as_int() const;  // an integer (a float with an integral value is accepted, as COCO writes)
  int64_t as_int(int64_t lo, int64_t hi) const;  // range-checked: "expected an integer >= 1, got 0"
  double as_double() const;                      // an integer or a float
  bool as_bool() const;                          // true or false
  bool as_flag() const;                          // true/false or 0/1, as COCO writes iscrowd
  std::string as_string() const;
  std::vector<int64_t> as_int_list() const;
  std::vector<double> as_double_list() const;

  // With defaults, for optional keys (absent or null: the fallback).
  int64_t get_int(const std::string& key, int64_t fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const;
  double get_double(const std::string& key, double fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;
  // The "type" field, checked against the accepted values.
  std::string type(const std::vector<std::string>& accepted) const;
  // Throws naming the first key of this object that is not in `known`, and the known ones:
  //   "config model.rpn_head: unknown key \"anchor_genrator\" (known: type, in_channels, ...)".
  // Keys starting with '_' (mmengine's "_scope_", "_delete_") are allowed.
  void check_keys(const std::vector<std::string>& known) const;

  // Throws gndet::Error "<where>: <what>, got <the value, shortened>".
  [[noreturn]] void fail(const std::string& what) const;

 private:
  std::string child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  // "config model.x" or "file.json: x", for `path`.
  std::string where(const std::string& path) const;

  const Json* json_;
  const std::string* source_ = nullptr;  // null: a config
  std::string path_;
};

}  // namespace gndet
