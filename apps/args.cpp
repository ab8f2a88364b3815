#include "apps/args.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace gndet::app {

ArgParser::ArgParser(std::string command, std::string summary)
    : command_(std::move(command)), summary_(std::move(summary)) {}

ArgParser& ArgParser::flag(const std::string& name, const std::string& help) {
  specs_.push_back({name, "", help, "", Spec::Flag});
  return *this;
}
ArgParser& ArgParser::option(const std::string& name, const std::string& metavar, const std::string& help,
                             const std::string& default_value) {
  specs_.push_back({name, metavar, help, default_value, Spec::Option});
  return *this;
}
ArgParser& ArgParser::optional_value(const std::string& name, const std::string& metavar, const std::string& help) {
  specs_.push_back({name, metavar, help, "", Spec::OptionalValue});
  return *this;
}
ArgParser& ArgParser::multi(const std::string& name, const std::string& metavar, const std::string& help) {
  specs_.push_back({name, metavar, help, "", Spec::Multi});
  return *this;
}
ArgParser& ArgParser::positional(const std::string& name, const std::string& help, int min_count, int max_count) {
  positionals_.push_back({name, help, min_count, max_count});
  return *this;
}
ArgParser& ArgParser::example(const std::string& line) {
  examples_.push_back(line);
  return *this;
}

const ArgParser::Spec* ArgParser::find(const std::string& name) const {
  for (const Spec& s : specs_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

bool ArgParser::parse(const std::vector<std::string>& args) {
  std::vector<std::string> pos;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--help" || a == "-h") return false;
    if (a.rfind("--", 0) != 0 || a == "--") {
      pos.push_back(a);
      continue;
    }
    std::string name = a, inline_value;
    const size_t eq = a.find('=');
    const bool has_inline = eq != std::string::npos;
    if (has_inline) {
      name = a.substr(0, eq);
      inline_value = a.substr(eq + 1);
    }
    const Spec* s = find(name);
    if (s == nullptr) throw UsageError(command_ + ": unknown option '" + name + "' (see " + command_ + " --help)");
    auto& vals = values_[name];
    if (s->kind == Spec::Flag) {
      if (has_inline) throw UsageError(command_ + ": " + name + " takes no value");
      vals.push_back("1");
    } else if (s->kind == Spec::OptionalValue) {
      if (has_inline) {
        vals = {inline_value};
      } else if (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) {
        vals = {args[++i]};
      } else {
        vals = {""};
      }
    } else if (s->kind == Spec::Option) {
      if (has_inline) {
        vals = {inline_value};
      } else {
        if (i + 1 >= args.size()) throw UsageError(command_ + ": " + name + " needs a value (" + s->metavar + ")");
        vals = {args[++i]};
      }
    } else {
      if (has_inline) vals.push_back(inline_value);
      while (i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0) vals.push_back(args[++i]);
      if (vals.empty()) throw UsageError(command_ + ": " + name + " needs at least one " + s->metavar);
    }
  }
  size_t at = 0;
  for (const Positional& p : positionals_) {
    std::vector<std::string>& vals = values_[p.name];
    while (at < pos.size() && (p.max_count < 0 || static_cast<int>(vals.size()) < p.max_count)) vals.push_back(pos[at++]);
    if (static_cast<int>(vals.size()) < p.min_count) {
      throw UsageError(command_ + ": missing argument " + p.name + " (see " + command_ + " --help)");
    }
  }
  if (at < pos.size()) throw UsageError(command_ + ": unexpected argument '" + pos[at] + "'");
  return true;
}

std::string ArgParser::help() const {
  std::ostringstream os;
  os << "usage: " << command_;
  for (const Positional& p : positionals_) {
    os << ' ' << (p.min_count == 0 ? "[" : "") << p.name << (p.max_count != 1 ? "..." : "") << (p.min_count == 0 ? "]" : "");
  }
  if (!specs_.empty()) os << " [options]";
  os << "\n\n" << summary_ << "\n";
  if (!positionals_.empty()) {
    os << "\narguments:\n";
    for (const Positional& p : positionals_) os << "  " << p.name << "\n      " << p.help << "\n";
  }
  if (!specs_.empty()) {
    os << "\noptions:\n";
    for (const Spec& s : specs_) {
      os << "  " << s.name;
      if (s.kind == Spec::OptionalValue) os << " [" << s.metavar << ']';
      else if (s.kind != Spec::Flag) os << ' ' << s.metavar << (s.kind == Spec::Multi ? "..." : "");
      os << "\n      " << s.help;
      if (!s.default_value.empty()) os << " (default: " << s.default_value << ")";
      os << "\n";
    }
    os << "  --help\n      show this help\n";
  }
  if (!examples_.empty()) {
    os << "\nexamples:\n";
    for (const std::string& e : examples_) os << "  " << e << "\n";
  }
  return os.str();
}

bool ArgParser::has(const std::string& name) const {
  const auto it = values_.find(name);
  return it != values_.end() && !it->second.empty();
}

std::string ArgParser::get(const std::string& name) const {
  if (has(name)) return values_.at(name).front();
  const Spec* s = find(name);
  return s != nullptr ? s->default_value : std::string();
}

std::vector<std::string> ArgParser::list(const std::string& name) const {
  const auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

int64_t ArgParser::get_int(const std::string& name, int64_t lo, int64_t hi) const {
  const std::string v = get(name);
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || errno == ERANGE) {
    throw UsageError(command_ + ": " + name + " expects an integer, got '" + v + "'");
  }
  if (x < lo || x > hi) {
    const std::string range = hi == INT64_MAX ? ">= " + std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
    throw UsageError(command_ + ": " + name + " must be " + range + ", got " + v);
  }
  return x;
}

double ArgParser::get_double(const std::string& name, double lo, double hi) const {
  const std::string v = get(name);
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x)) {
    throw UsageError(command_ + ": " + name + " expects a finite number, got '" + v + "'");
  }
  if (x < lo || x > hi) {
    std::ostringstream range;
    range << lo << ".." << hi;
    throw UsageError(command_ + ": " + name + " must be in " + range.str() + ", got " + v);
  }
  return x;
}

}  // namespace gndet::app
