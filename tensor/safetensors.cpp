#include "tensor/safetensors.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "tensor/factory.h"
#include "tensor/json_text.h"

namespace gndet {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

const char* st_dtype(DType t) {
  switch (t) {
    case kFloat32: return "F32";
    case kFloat64: return "F64";
    case kInt64: return "I64";
    case kInt32: return "I32";
    case kUInt8: return "U8";
    case kBool: return "BOOL";
    case kBFloat16: return "BF16";
    case kFloat16: return "F16";
  }
  return "?";
}

bool parse_st_dtype(const std::string& s, DType* out) {
  static const std::pair<const char*, DType> table[] = {{"F32", kFloat32}, {"F64", kFloat64}, {"I64", kInt64},
                                                        {"I32", kInt32},   {"U8", kUInt8},     {"BOOL", kBool},
                                                        {"BF16", kBFloat16}, {"F16", kFloat16}};
  for (const auto& [name, t] : table) {
    if (s == name) {
      *out = t;
      return true;
    }
  }
  return false;
}

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the format's own limit

}  // namespace

void check_not_special_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);  // follows symlinks
  if (ec || !std::filesystem::exists(status)) return;
  GNDET_CHECK(!std::filesystem::is_directory(status), what, " '", path, "' is a directory, not a file");
  GNDET_CHECK(std::filesystem::is_regular_file(status), what, " '", path,
              "' is not a regular file (a device or pipe); give a file");
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  {
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    GNDET_CHECK(f != nullptr, "cannot open '", tmp, "' for writing: ", std::strerror(errno));
    const size_t written = std::fwrite(bytes.data(), 1, bytes.size(), f);
    const bool flushed = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
    const bool closed = std::fclose(f) == 0;
    if (written != bytes.size() || !flushed || !closed) {
      std::remove(tmp.c_str());
      GNDET_FAIL("writing '", path, "' failed (disk full?): ", std::strerror(errno));
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = std::strerror(errno);
    std::remove(tmp.c_str());
    GNDET_FAIL("cannot rename '", tmp, "' to '", path, "': ", why);
  }
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<Tensor> hosts;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    GNDET_CHECK(t.defined(), "save_safetensors: tensor '", name, "' is undefined");
    GNDET_CHECK(name != "__metadata__", "save_safetensors: '__metadata__' is reserved");
    Tensor h = t.detach().cpu().contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(h.numel()) * h.element_size();
    header[name] = {{"dtype", st_dtype(h.dtype())}, {"shape", h.shape()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    hosts.push_back(std::move(h));
  }
  std::string head = header.dump();
  head.append((8 - head.size() % 8) % 8, ' ');  // keeps the data 8-byte aligned, as the spec suggests
  std::string bytes(8, '\0');
  const uint64_t n = head.size();
  std::memcpy(bytes.data(), &n, 8);
  bytes += head;
  bytes.reserve(bytes.size() + offset);
  for (const Tensor& h : hosts) {
    bytes.append(static_cast<const char*>(h.raw_data()), static_cast<size_t>(h.numel()) * h.element_size());
  }
  write_file_atomic(path, bytes);
}

SafetensorsFile load_safetensors(const std::string& path) {
  check_not_special_file(path, "safetensors file");
  std::ifstream in(path, std::ios::binary);
  GNDET_CHECK(in.good(), "cannot open safetensors file '", path, "': ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const uint64_t file_size = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  GNDET_CHECK(file_size >= 8, "'", path, "' is not a safetensors file: ", file_size, " bytes, shorter than the 8-byte header length");
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  GNDET_CHECK(header_len <= kMaxHeaderBytes && header_len <= file_size - 8, "'", path,
              "' is truncated or not a safetensors file: header length ", header_len, " but the file has ",
              file_size - 8, " bytes after it");
  std::string head(header_len, '\0');
  in.read(head.data(), static_cast<std::streamsize>(header_len));
  GNDET_CHECK(in.good(), "'", path, "': cannot read the ", header_len, "-byte header");
  const nlohmann::json header = parse_json_text(head, "'" + path + "': the safetensors JSON header");
  GNDET_CHECK(header.is_object(), "'", path, "': safetensors header is not a JSON object");
  const uint64_t data_start = 8 + header_len;
  const uint64_t data_size = file_size - data_start;

  SafetensorsFile out;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& e = it.value();
    if (name == "__metadata__") {
      GNDET_CHECK(e.is_object(), "'", path, "': __metadata__ must be an object of strings");
      for (auto m = e.begin(); m != e.end(); ++m) {
        GNDET_CHECK(m.value().is_string(), "'", path, "': __metadata__.", m.key(), " is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = "'" + path + "', tensor '" + printable(name) + "'";
    GNDET_CHECK(e.is_object() && e.contains("dtype") && e.contains("shape") && e.contains("data_offsets"), where,
                ": entry needs dtype, shape and data_offsets");
    DType dt;
    GNDET_CHECK(e["dtype"].is_string() && parse_st_dtype(e["dtype"].get<std::string>(), &dt), where,
                ": unsupported dtype ", json_excerpt(e["dtype"]));
    Shape shape;
    GNDET_CHECK(e["shape"].is_array(), where, ": shape is not an array");
    uint64_t expect = itemsize(dt);  // bytes, checked for overflow dimension by dimension
    for (const auto& s : e["shape"]) {
      GNDET_CHECK(s.is_number_integer() && s.get<int64_t>() >= 0, where, ": bad shape ", json_excerpt(e["shape"]),
                  " (expected non-negative integers)");
      shape.push_back(s.get<int64_t>());
      GNDET_CHECK(!__builtin_mul_overflow(expect, static_cast<uint64_t>(shape.back()), &expect) &&
                      expect <= static_cast<uint64_t>(INT64_MAX),
                  where, ": shape ", json_excerpt(e["shape"]), " has more bytes than fit in 64 bits");
    }
    const auto& offs = e["data_offsets"];
    GNDET_CHECK(offs.is_array() && offs.size() == 2 && offs[0].is_number_unsigned() && offs[1].is_number_unsigned(),
                where, ": data_offsets must be two non-negative integers");
    const uint64_t b = offs[0].get<uint64_t>(), en = offs[1].get<uint64_t>();
    GNDET_CHECK(b <= en && en <= data_size, where, ": data_offsets [", b, ", ", en, "] run past the ", data_size,
                " data bytes (file truncated?)");
    GNDET_CHECK(en - b == expect, where, ": ", en - b, " data bytes for shape ", shape_str(shape), " of ",
                dtype_name(dt), " (expected ", expect, ")");
    Tensor t = empty(shape, dt);
    in.seekg(static_cast<std::streamoff>(data_start + b));
    in.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(expect));
    GNDET_CHECK(in.good() || expect == 0, where, ": read failed (file truncated?)");
    out.tensors[name] = t;
  }
  return out;
}

}  // namespace gndet
