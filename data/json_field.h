// Path-aware reading of JSON files: every error names the file and the JSON path of the field,
//   "instances_val.json: annotations[12].bbox: expected 4 numbers, got [1,2,3]".
// Used by the COCO annotation and results readers and by the transform configs.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tensor/error.h"

namespace gndet::data {

using Json = nlohmann::json;

// Reads and parses a JSON file; errors name the file (and the byte offset of a syntax error).
Json read_json_file(const std::string& path, const char* what);
// The file's bytes; `what` names the kind of file in the error ("cannot open COCO results file ...").
std::string read_text_file(const std::string& path, const char* what);

class JsonField {
 public:
  // `source` (a file name or "pipeline config") must outlive the field.
  JsonField(const Json& json, const std::string& source, std::string path = "")
      : json_(&json), source_(&source), path_(std::move(path)) {}

  const Json& json() const { return *json_; }
  const std::string& path() const { return path_; }
  bool has(const char* key) const { return json_->is_object() && json_->contains(key); }
  JsonField operator[](const char* key) const;  // required member of an object
  JsonField at(size_t index) const;             // element of an array (index < size())
  size_t size() const;                          // length of an array (throws for non-arrays)

  int64_t as_int() const;    // an integer (a float with an integral value is accepted)
  double as_number() const;  // an integer or a float
  std::string as_string() const;
  bool as_flag() const;                    // true/false or 0/1, as COCO writes iscrowd
  std::vector<double> as_numbers() const;  // an array of numbers

  // Throws gndet::Error "<source>: <path>: <what>, got <the value, shortened>".
  [[noreturn]] void fail(const std::string& what) const;

 private:
  std::string child_path(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const Json* json_;
  const std::string* source_;
  std::string path_;
};

}  // namespace gndet::data
