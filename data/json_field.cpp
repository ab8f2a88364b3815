#include "data/json_field.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "tensor/json_text.h"
#include "tensor/safetensors.h"

namespace gndet::data {

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

void JsonField::fail(const std::string& what) const {
  const std::string value = json_excerpt(*json_, 80);
  GNDET_FAIL(*source_, ": ", path_.empty() ? std::string("(top level)") : path_, ": ", what, ", got ", value);
}

JsonField JsonField::operator[](const char* key) const {
  if (!json_->is_object()) fail(std::string("expected an object with a \"") + key + "\" field");
  const auto it = json_->find(key);
  if (it == json_->end()) GNDET_FAIL(*source_, ": ", child_path(key), ": missing required field");
  return JsonField(*it, *source_, child_path(key));
}

JsonField JsonField::at(size_t index) const {
  if (!json_->is_array() || index >= json_->size()) fail("expected an array with an element " + std::to_string(index));
  return JsonField((*json_)[index], *source_, path_ + "[" + std::to_string(index) + "]");
}

size_t JsonField::size() const {
  if (!json_->is_array()) fail("expected an array");
  return json_->size();
}

int64_t JsonField::as_int() const {
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

double JsonField::as_number() const {
  if (!json_->is_number()) fail("expected a number");
  return json_->get<double>();
}

std::string JsonField::as_string() const {
  if (!json_->is_string()) fail("expected a string");
  return json_->get<std::string>();
}

bool JsonField::as_flag() const {
  if (json_->is_boolean()) return json_->get<bool>();
  if (json_->is_number_integer()) {
    const int64_t v = json_->get<int64_t>();
    if (v == 0 || v == 1) return v == 1;
  }
  fail("expected true/false or 0/1");
}

std::vector<double> JsonField::as_numbers() const {
  if (!json_->is_array()) fail("expected an array of numbers");
  std::vector<double> out;
  out.reserve(json_->size());
  for (const Json& v : *json_) {
    if (!v.is_number()) fail("expected an array of numbers");
    out.push_back(v.get<double>());
  }
  return out;
}

}  // namespace gndet::data
