// A small declarative argument parser shared by every subcommand: each command declares its
// flags, options and positionals; parse() validates them, answers --help, and reports the first
// problem in one line (UsageError).
#pragma once

#include <cfloat>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace gndet::app {

class UsageError : public Error {
 public:
  using Error::Error;
};

class ArgParser {
 public:
  ArgParser(std::string command, std::string summary);

  ArgParser& flag(const std::string& name, const std::string& help);
  ArgParser& option(const std::string& name, const std::string& metavar, const std::string& help,
                    const std::string& default_value = "");
  // An option whose value may be left out (argparse's nargs='?'): "--resume" alone, "--resume CKPT"
  // (the next token, unless it starts with "--") or "--resume=CKPT". has() tells whether it was
  // given, get() its value ("" when left out).
  ArgParser& optional_value(const std::string& name, const std::string& metavar, const std::string& help);
  // An option that takes every following token up to the next one starting with "--".
  ArgParser& multi(const std::string& name, const std::string& metavar, const std::string& help);
  // Positionals in order; `max_count` > 1 (or -1: unbounded) only for the last one.
  ArgParser& positional(const std::string& name, const std::string& help, int min_count = 1, int max_count = 1);
  ArgParser& example(const std::string& line);

  // Returns false when --help was printed (the caller exits 0). Throws UsageError otherwise.
  bool parse(const std::vector<std::string>& args);
  std::string help() const;

  bool has(const std::string& name) const;  // flag given, or option given explicitly
  std::string get(const std::string& name) const;
  std::vector<std::string> list(const std::string& name) const;
  // Numbers are checked whole: "12x", values beyond 64 bits, NaN and infinities are usage errors,
  // and so is a value outside [lo, hi].
  int64_t get_int(const std::string& name, int64_t lo = INT64_MIN, int64_t hi = INT64_MAX) const;
  double get_double(const std::string& name, double lo = -DBL_MAX, double hi = DBL_MAX) const;

 private:
  struct Spec {
    std::string name, metavar, help, default_value;
    enum Kind { Flag, Option, OptionalValue, Multi } kind;
  };
  struct Positional {
    std::string name, help;
    int min_count, max_count;
  };
  const Spec* find(const std::string& name) const;

  std::string command_, summary_;
  std::vector<Spec> specs_;
  std::vector<Positional> positionals_;
  std::vector<std::string> examples_;
  std::map<std::string, std::vector<std::string>> values_;
};

}  // namespace gndet::app
