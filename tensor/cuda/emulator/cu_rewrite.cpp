// cu_rewrite: turns a CUDA source (.cu / .cuh) into C++ for the emulated device, at build time.
// The kernel sources stay exactly as nvcc reads them; two constructs have no C++ spelling, and
// only they are rewritten:
//
//   kernel<<<grid, block, smem, stream>>>(args...)
//     -> ::gndet::cuda::emu::launch({"kernel", __FILE__, __LINE__}, {grid, block, smem, stream},
//                                   [=](auto... a) { kernel(a...); }, args...)
//     The arguments are evaluated once, at the launch, as nvcc does; every emulated thread then
//     calls the kernel as a plain function, so template arguments are deduced from the call's
//     arguments exactly as nvcc deduces them.
//   extern __shared__ __align__(16) T name[];
//     -> T* const name = static_cast<T*>(::gndet::cuda::emu::dynamic_shared());
//
// Everything else (qualifiers, static __shared__, builtins) is the emulator's cuda_runtime.h.
// Newlines inside a rewritten construct are kept, and the output starts with a #line directive
// naming the source, so compiler messages and __FILE__ / __LINE__ point at the original lines.
//
//   cu_rewrite INPUT OUTPUT [DISPLAY_NAME]
#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

[[noreturn]] void fail(const std::string& file, const std::string& text, size_t pos, const std::string& why) {
  int line = 1;
  for (size_t i = 0; i < pos && i < text.size(); ++i) line += text[i] == '\n';
  std::cerr << file << ":" << line << ": cu_rewrite: " << why << "\n";
  std::exit(1);
}

// For every character of the source: is it code (not inside a comment, string or char literal)?
std::vector<bool> code_mask(const std::string& s) {
  std::vector<bool> code(s.size(), true);
  size_t i = 0;
  while (i < s.size()) {
    if (s.compare(i, 2, "//") == 0) {
      while (i < s.size() && s[i] != '\n') code[i++] = false;
    } else if (s.compare(i, 2, "/*") == 0) {
      const size_t end = s.find("*/", i + 2);
      const size_t stop = end == std::string::npos ? s.size() : end + 2;
      while (i < stop) code[i++] = false;
    } else if (s.compare(i, 2, "R\"") == 0 && (i == 0 || !std::isalnum(static_cast<unsigned char>(s[i - 1])))) {
      const size_t open = s.find('(', i);
      const std::string close = ")" + s.substr(i + 2, open - i - 2) + "\"";
      const size_t end = s.find(close, open);
      const size_t stop = end == std::string::npos ? s.size() : end + close.size();
      while (i < stop) code[i++] = false;
    } else if (s[i] == '"' || s[i] == '\'') {
      const char q = s[i];
      code[i++] = false;
      while (i < s.size() && s[i] != q) {
        if (s[i] == '\\') code[i++] = false;
        if (i < s.size()) code[i++] = false;
      }
      if (i < s.size()) code[i++] = false;
    } else {
      ++i;
    }
  }
  return code;
}

bool ident_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The end (one past) of the bracketed group that opens at `open` ('(' '[' '{' '<').
size_t match_forward(const std::string& s, const std::vector<bool>& code, size_t open, const std::string& file) {
  std::vector<char> stack;
  for (size_t i = open; i < s.size(); ++i) {
    if (!code[i]) continue;
    const char c = s[i];
    if (c == '(' || c == '[' || c == '{') stack.push_back(c);
    if (c == ')' || c == ']' || c == '}') {
      if (stack.empty()) fail(file, s, i, "unbalanced brackets");
      stack.pop_back();
      if (stack.empty()) return i + 1;
    }
  }
  fail(file, s, open, "unterminated bracket");
}

// The start of the kernel expression that ends just before `end`: a (qualified) name with
// optional template arguments, e.g. `gn_backward_tile_cu<T, false>` or `cuda::f<V>`.
size_t kernel_start(const std::string& s, const std::vector<bool>& code, size_t end, const std::string& file) {
  size_t i = end;
  while (i > 0 && std::isspace(static_cast<unsigned char>(s[i - 1]))) --i;
  for (;;) {
    if (i > 0 && s[i - 1] == '>') {  // template arguments: match back to their '<'
      int depth = 0;
      size_t j = i;
      do {
        --j;
        if (!code[j]) continue;
        if (s[j] == '>') ++depth;
        if (s[j] == '<') --depth;
      } while (depth > 0 && j > 0);
      if (depth != 0) fail(file, s, end, "cannot find the kernel's template arguments");
      i = j;
    }
    const size_t name_end = i;
    while (i > 0 && ident_char(s[i - 1])) --i;
    if (i == name_end) fail(file, s, end, "a launch must name its kernel (expected an identifier before <<<)");
    if (i >= 2 && s[i - 1] == ':' && s[i - 2] == ':') {
      i -= 2;
      continue;
    }
    return i;
  }
}

// Replaces every `K<<<cfg>>>(args)`.
std::string rewrite_launches(const std::string& s, const std::string& file) {
  const std::vector<bool> code = code_mask(s);
  std::string out;
  size_t copied = 0;
  for (size_t pos = s.find("<<<"); pos != std::string::npos; pos = s.find("<<<", pos + 3)) {
    if (!code[pos]) continue;
    const size_t k0 = kernel_start(s, code, pos, file);
    if (k0 < copied) fail(file, s, pos, "nested launch");
    const size_t cfg_end = s.find(">>>", pos + 3);
    if (cfg_end == std::string::npos) fail(file, s, pos, "<<< without >>>");
    size_t open = cfg_end + 3;
    while (open < s.size() && std::isspace(static_cast<unsigned char>(s[open]))) ++open;
    if (open >= s.size() || s[open] != '(') fail(file, s, pos, "expected the kernel's arguments after >>>");
    const size_t close = match_forward(s, code, open, file);  // one past ')'
    const std::string kernel = s.substr(k0, pos - k0);
    const std::string cfg = s.substr(pos + 3, cfg_end - pos - 3);
    const std::string args = s.substr(open + 1, close - open - 2);
    std::string name;  // the kernel's name for messages, on one line
    for (const char c : kernel) {
      if (!std::isspace(static_cast<unsigned char>(c)) || (!name.empty() && name.back() != ' ')) {
        name += std::isspace(static_cast<unsigned char>(c)) ? ' ' : c;
      }
    }
    bool blank_args = true;
    for (const char c : args) blank_args = blank_args && std::isspace(static_cast<unsigned char>(c));
    out.append(s, copied, k0 - copied);
    out += "::gndet::cuda::emu::launch({\"" + name + "\", __FILE__, __LINE__}, {" + cfg + "}, [=](auto... gndet_emu_arg) { " +
           kernel + "(gndet_emu_arg...); }" + (blank_args ? "" : ", ") + args + ")";
    copied = close;
  }
  out.append(s, copied, std::string::npos);
  return out;
}

// Replaces every `extern __shared__ [__align__(n)] T name[];`.
std::string rewrite_dynamic_shared(const std::string& s, const std::string& file) {
  const std::vector<bool> code = code_mask(s);
  std::string out;
  size_t copied = 0;
  const std::string key = "extern __shared__";
  for (size_t pos = s.find(key); pos != std::string::npos; pos = s.find(key, pos + key.size())) {
    if (!code[pos]) continue;
    const size_t semi = s.find(';', pos);
    const size_t brackets = s.rfind("[]", semi);
    if (semi == std::string::npos || brackets == std::string::npos || brackets < pos) {
      fail(file, s, pos, "expected `extern __shared__ T name[];`");
    }
    std::string decl = s.substr(pos + key.size(), brackets - pos - key.size());
    const size_t align = decl.find("__align__");
    if (align != std::string::npos) decl.erase(align, decl.find(')', align) + 1 - align);
    size_t name_end = decl.size();
    while (name_end > 0 && std::isspace(static_cast<unsigned char>(decl[name_end - 1]))) --name_end;
    size_t name_begin = name_end;
    while (name_begin > 0 && ident_char(decl[name_begin - 1])) --name_begin;
    const std::string name = decl.substr(name_begin, name_end - name_begin);
    std::string type = decl.substr(0, name_begin);
    while (!type.empty() && std::isspace(static_cast<unsigned char>(type.front()))) type.erase(0, 1);
    while (!type.empty() && std::isspace(static_cast<unsigned char>(type.back()))) type.pop_back();
    if (name.empty() || type.empty()) fail(file, s, pos, "cannot read the type and name of the dynamic shared array");
    out.append(s, copied, pos - copied);
    out += type + "* const " + name + " = static_cast<" + type + "*>(::gndet::cuda::emu::dynamic_shared());";
    copied = semi + 1;
  }
  out.append(s, copied, std::string::npos);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: cu_rewrite INPUT OUTPUT [DISPLAY_NAME]\n";
    return 2;
  }
  const std::string in = argv[1], out = argv[2], shown = argc == 4 ? argv[3] : argv[1];
  std::ifstream f(in, std::ios::binary);
  if (!f) {
    std::cerr << "cu_rewrite: cannot read " << in << "\n";
    return 1;
  }
  std::ostringstream text;
  text << f.rdbuf();
  std::string s = rewrite_dynamic_shared(rewrite_launches(text.str(), shown), shown);
  std::ofstream o(out, std::ios::binary);
  o << "#line 1 \"" << shown << "\"\n" << s;
  if (!o) {
    std::cerr << "cu_rewrite: cannot write " << out << "\n";
    return 1;
  }
  return 0;
}
