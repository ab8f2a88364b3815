#include "tensor/config.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tensor/error.h"
#include "tensor/json_text.h"
#include "tensor/safetensors.h"

namespace gndet {
namespace fs = std::filesystem;

// ---- files ----

std::string read_text_file(const std::string& path, const char* what) {
  check_not_special_file(path, what);
  std::ifstream in(path, std::ios::binary);
  GNDET_CHECK(in.good(), "cannot open ", what, " '", path, "': ", std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  GNDET_CHECK(!in.bad(), "error reading ", what, " '", path, "'");
  return os.str();
}

Json read_json_file(const std::string& path, const char* what) {
  return parse_json_text(read_text_file(path, what), std::string(what) + " '" + path + "'");
}

// ---- configs: _base_ and --cfg-options ----

namespace {

void merge_into(Json& base, const Json& over) {
  if (!base.is_object() || !over.is_object() || (over.contains("_delete_") && over["_delete_"] == true)) {
    base = over;
    if (base.is_object()) base.erase("_delete_");
    return;
  }
  for (auto it = over.begin(); it != over.end(); ++it) {
    if (base.contains(it.key())) {
      merge_into(base[it.key()], it.value());
    } else {
      base[it.key()] = it.value();
      if (base[it.key()].is_object()) base[it.key()].erase("_delete_");
    }
  }
}

Json read_json(const fs::path& path) {
  return parse_json_text(read_text_file(path.string(), "config"), "config '" + path.string() + "'",
                         /*ignore_comments=*/true);
}

Json load_rec(const fs::path& path, std::vector<std::string>& chain) {
  const std::string key = fs::weakly_canonical(path).string();
  for (const std::string& c : chain) {
    GNDET_CHECK(c != key, "config '", path.string(), "': _base_ inheritance cycle");
  }
  GNDET_CHECK(fs::exists(path), "config file '", path.string(), "' not found");
  chain.push_back(key);
  Json own = read_json(path);
  GNDET_CHECK(own.is_object(), "config '", path.string(), "' must be a JSON object");
  Json merged = Json::object();
  if (own.contains("_base_")) {
    Json bases = own["_base_"];
    if (bases.is_string()) bases = Json::array({bases});
    GNDET_CHECK(bases.is_array(), "config '", path.string(), "': _base_ must be a path or a list of paths");
    for (const Json& b : bases) {
      GNDET_CHECK(b.is_string(), "config '", path.string(), "': _base_ entries must be strings");
      merge_into(merged, load_rec(path.parent_path() / b.get<std::string>(), chain));
    }
    own.erase("_base_");
  }
  merge_into(merged, own);
  chain.pop_back();
  return merged;
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  std::string part;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  return parts;
}

bool is_index(const std::string& s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string::npos;
}

}  // namespace

Json load_config(const std::string& path) {
  std::vector<std::string> chain;
  return load_rec(fs::path(path), chain);
}

void apply_config_override(Json& cfg, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  GNDET_CHECK(eq != std::string::npos && eq > 0, "--cfg-options: expected key=value, got '", assignment, "'");
  const std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  Json* node = &cfg;
  std::string walked;
  for (const std::string& part : split_key(key)) {
    walked += (walked.empty() ? "" : ".") + part;
    if (node->is_array() && is_index(part)) {
      // Digits only, but maybe more than fit (std::stoul threw out_of_range): too large is out of range.
      size_t i = node->size();
      if (part.size() < 10) i = static_cast<size_t>(std::stoull(part));
      GNDET_CHECK(i < node->size(), "--cfg-options: ", walked, " is out of range (the list has ", node->size(),
                  " elements)");
      node = &(*node)[i];
    } else {
      if (!node->is_object() || !node->contains(part)) {
        std::string known;
        if (node->is_object()) {
          for (auto it = node->begin(); it != node->end(); ++it) known += (known.empty() ? "" : ", ") + it.key();
        }
        GNDET_FAIL("--cfg-options: unknown config key '", walked, "'",
                   known.empty() ? std::string() : " (keys here: " + known + ")");
      }
      node = &(*node)[part];
    }
  }
  check_json_depth(text, "--cfg-options " + key);
  Json value;
  try {
    value = Json::parse(text);
  } catch (const Json::exception&) {  // not JSON (or a number out of range): the text itself
    value = text;
  }
  *node = std::move(value);
}

// ---- ConfigNode ----

std::string ConfigNode::where(const std::string& path) const {
  if (source_ == nullptr) return "config " + (path.empty() ? std::string("<root>") : path);
  return *source_ + ": " + (path.empty() ? std::string("(top level)") : path);
}

void ConfigNode::fail(const std::string& what) const {
  GNDET_FAIL(where(path_), ": ", what, ", got ", json_excerpt(*json_, 80));
}

ConfigNode ConfigNode::operator[](const std::string& key) const {
  if (!json_->is_object()) fail("expected an object with a \"" + key + "\" field");
  const auto it = json_->find(key);
  if (it == json_->end()) GNDET_FAIL(where(child_path(key)), ": missing required field");
  return source_ ? ConfigNode(*it, *source_, child_path(key)) : ConfigNode(*it, child_path(key));
}

ConfigNode ConfigNode::at(size_t index) const {
  if (!json_->is_array() || index >= json_->size()) fail("expected a list with an element " + std::to_string(index));
  const std::string child = path_ + "[" + std::to_string(index) + "]";
  return source_ ? ConfigNode((*json_)[index], *source_, child) : ConfigNode((*json_)[index], child);
}

size_t ConfigNode::size() const {
  if (!json_->is_array()) fail("expected a list");
  return json_->size();
}

int64_t ConfigNode::as_int() const {
  if (json_->is_number_unsigned() && json_->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    fail("expected an integer below 2^63");
  }
  if (json_->is_number_integer()) return json_->get<int64_t>();
  if (json_->is_number_float()) {
    const double v = json_->get<double>();
    if (std::isfinite(v) && v == std::floor(v) && std::abs(v) < 9.0e15) return static_cast<int64_t>(v);
  }
  fail("expected an integer");
}
int64_t ConfigNode::as_int(int64_t lo, int64_t hi) const {
  const int64_t v = as_int();
  if (v < lo || v > hi) {
    fail(hi == INT64_MAX ? "expected an integer >= " + std::to_string(lo)
                         : "expected an integer in " + std::to_string(lo) + ".." + std::to_string(hi));
  }
  return v;
}
double ConfigNode::as_double() const {
  if (!json_->is_number()) fail("expected a number");
  return json_->get<double>();
}
bool ConfigNode::as_bool() const {
  if (!json_->is_boolean()) fail("expected true or false");
  return json_->get<bool>();
}
bool ConfigNode::as_flag() const {
  if (json_->is_boolean()) return json_->get<bool>();
  if (json_->is_number_integer()) {
    const int64_t v = json_->get<int64_t>();
    if (v == 0 || v == 1) return v == 1;
  }
  fail("expected true/false or 0/1");
}
std::string ConfigNode::as_string() const {
  if (!json_->is_string()) fail("expected a string");
  return json_->get<std::string>();
}
std::vector<int64_t> ConfigNode::as_int_list() const {
  std::vector<int64_t> out;
  for (size_t i = 0; i < size(); ++i) out.push_back(at(i).as_int());
  return out;
}
std::vector<double> ConfigNode::as_double_list() const {
  if (!json_->is_array()) fail("expected a list of numbers");
  std::vector<double> out;
  out.reserve(json_->size());
  for (const Json& v : *json_) {
    if (!v.is_number()) fail("expected a list of numbers");
    out.push_back(v.get<double>());
  }
  return out;
}

int64_t ConfigNode::get_int(const std::string& key, int64_t fallback) const {
  return has(key) && !(*json_)[key].is_null() ? (*this)[key].as_int() : fallback;
}
int64_t ConfigNode::get_int(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const {
  return has(key) && !(*json_)[key].is_null() ? (*this)[key].as_int(lo, hi) : fallback;
}
double ConfigNode::get_double(const std::string& key, double fallback) const {
  return has(key) && !(*json_)[key].is_null() ? (*this)[key].as_double() : fallback;
}
bool ConfigNode::get_bool(const std::string& key, bool fallback) const {
  return has(key) && !(*json_)[key].is_null() ? (*this)[key].as_bool() : fallback;
}
std::string ConfigNode::get_string(const std::string& key, const std::string& fallback) const {
  return has(key) && !(*json_)[key].is_null() ? (*this)[key].as_string() : fallback;
}

std::string ConfigNode::type(const std::vector<std::string>& accepted) const {
  const std::string t = (*this)["type"].as_string();
  for (const std::string& a : accepted) {
    if (a == t) return t;
  }
  std::string list;
  for (const std::string& a : accepted) list += (list.empty() ? "" : ", ") + a;
  GNDET_FAIL(where(child_path("type")), ": '", t, "' is not supported (expected one of: ", list, ")");
}

void ConfigNode::check_keys(const std::vector<std::string>& known) const {
  if (!json_->is_object()) fail("expected an object");
  for (auto it = json_->begin(); it != json_->end(); ++it) {
    const std::string& key = it.key();
    if (key.starts_with('_')) continue;
    bool ok = false;
    for (const std::string& k : known) ok = ok || k == key;
    if (ok) continue;
    std::string list;
    for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
    GNDET_FAIL(where(path_), ": unknown key ", json_excerpt(Json(key), 60), " (known: ", list.empty() ? "none" : list, ")");
  }
}

}  // namespace gndet
