#include "tensor/json_text.h"

#include <cstdio>

#include "tensor/error.h"

namespace gndet {

int json_nesting_depth(std::string_view text, bool with_comments, int limit, size_t* offset) {
  int depth = 0, deepest = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {  // skip the string, honouring backslash escapes
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
    } else if (with_comments && c == '/' && i + 1 < text.size() && text[i + 1] == '/') {
      while (i < text.size() && text[i] != '\n') ++i;
    } else if (with_comments && c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
      const size_t end = text.find("*/", i + 2);
      i = end == std::string_view::npos ? text.size() : end + 1;
    } else if (c == '[' || c == '{') {
      if (++depth > deepest) deepest = depth;
      if (deepest > limit) {
        if (offset) *offset = i;
        return deepest;
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

void check_json_depth(std::string_view text, const std::string& source, bool with_comments) {
  size_t at = 0;
  if (json_nesting_depth(text, with_comments, kMaxJsonDepth, &at) > kMaxJsonDepth) {
    GNDET_FAIL(source, " nests arrays/objects deeper than ", kMaxJsonDepth, " levels (at byte ", at,
               "); no valid input needs that");
  }
}

nlohmann::json parse_json_text(std::string_view text, const std::string& source, bool ignore_comments) {
  check_json_depth(text, source, ignore_comments);
  try {
    return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/true, ignore_comments);
  } catch (const nlohmann::json::exception& e) {  // parse_error, and out_of_range.406 for 1e400
    // nlohmann quotes the offending token whole ("number overflow parsing '777...'", 3000 digits).
    std::string why = e.what();
    if (why.size() > 200) why = why.substr(0, 197) + "...";
    GNDET_FAIL(source, " is not valid JSON: ", why);
  }
}

namespace {

// Appends to `out` until it holds more than `budget` characters. Each level appends at least one
// character before descending, so the recursion is at most `budget` deep.
void excerpt_into(const nlohmann::json& v, std::string& out, size_t budget) {
  if (out.size() > budget) return;
  if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& e : v) {
      if (out.size() > budget) return;
      if (!first) out += ',';
      first = false;
      excerpt_into(e, out, budget);
    }
    out += ']';
  } else if (v.is_object()) {
    out += '{';
    bool first = true;
    for (auto it = v.begin(); it != v.end(); ++it) {
      if (out.size() > budget) return;
      if (!first) out += ',';
      first = false;
      excerpt_into(nlohmann::json(it.key().substr(0, budget)), out, budget);
      out += ':';
      excerpt_into(it.value(), out, budget);
    }
    out += '}';
  } else if (v.is_string()) {
    const auto& s = v.get_ref<const std::string&>();
    // Cut before dumping so a huge string costs nothing; a cut inside a UTF-8 sequence is replaced.
    out += nlohmann::json(s.substr(0, budget + 1)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  } else {
    out += v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);  // scalars: short
  }
}

}  // namespace

std::string json_excerpt(const nlohmann::json& v, size_t max_chars) {
  if (max_chars < 4) max_chars = 4;
  std::string out;
  excerpt_into(v, out, max_chars);
  if (out.size() > max_chars) out = out.substr(0, max_chars - 3) + "...";
  return out;
}

std::string printable(std::string_view s) {
  std::string out;
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u == '\\') {
      out += "\\\\";
    } else if (u >= 0x20 && u < 0x7f) {
      out += c;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    }
  }
  return out;
}

}  // namespace gndet
