// Bounded handling of untrusted JSON, shared by every reader of JSON files (safetensors headers,
// COCO files, configs, checkpoint metadata):
//   - parse_json_text() refuses nesting deeper than kMaxJsonDepth before nlohmann parses: its
//     parser and destructor are iterative, but copying, comparing-by-value and dump() recurse once
//     per level, so a 100000-deep array crashes the first copy or error message (stack overflow).
//     Every nlohmann error (syntax, "number overflow" for 1e400, ...) becomes a gndet::Error
//     naming the source.
//   - json_excerpt() shows a value in at most `max_chars` characters and never recurses deeper than
//     that, so error messages stay short whatever the value is.
//   - printable() escapes bytes that a terminal would not show, so two keys that differ only by an
//     invisible byte read differently in a message.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace gndet {

// Real configs and COCO files nest fewer than 10 levels; 512 leaves plenty of room while keeping
// the recursive copy/dump well inside any thread's stack (each level takes < 200 bytes).
constexpr int kMaxJsonDepth = 512;

// Deepest nesting of arrays/objects in `text` (strings and, with comments, // and /* */ comments
// skipped), stopping early once `limit` is exceeded. Sets *offset to the byte where it was exceeded.
int json_nesting_depth(std::string_view text, bool with_comments, int limit, size_t* offset = nullptr);

// Throws gndet::Error naming `source` when `text` nests deeper than kMaxJsonDepth.
void check_json_depth(std::string_view text, const std::string& source, bool with_comments = false);

// Parses `text`; `source` names it in errors ("config 'a.json'", "'x.safetensors' header").
// Throws gndet::Error "<source> is not valid JSON: <why>" or "<source> nests deeper than 512 levels ...".
nlohmann::json parse_json_text(std::string_view text, const std::string& source, bool ignore_comments = false);

// The compact JSON of `v`, cut to at most `max_chars` characters ("..." marks the cut).
std::string json_excerpt(const nlohmann::json& v, size_t max_chars = 80);

// `s` with bytes outside printable ASCII written as \xNN (and backslash as \\).
std::string printable(std::string_view s);

}  // namespace gndet
