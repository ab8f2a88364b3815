#include "nn/checkpoint_io/zip.h"

#include <array>
#include <cstring>

#include "tensor/error.h"

namespace gndet::nn::ckpt {
namespace {

constexpr uint32_t kLocalSig = 0x04034b50;
constexpr uint32_t kCentralSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr size_t kLocalHeaderSize = 30;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kEndSize = 22;
constexpr size_t kAlignment = 64;  // torch aligns every entry's data so that it can be mapped in place

uint16_t get16(std::string_view b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}
uint32_t get32(std::string_view b, size_t at) { return get16(b, at) | static_cast<uint32_t>(get16(b, at + 2)) << 16; }

void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v & 0xff));
  out.push_back(static_cast<char>(v >> 8));
}
void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v & 0xffff));
  put16(out, static_cast<uint16_t>(v >> 16));
}

const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

}  // namespace

uint32_t crc32(std::string_view bytes) {
  const auto& t = crc_table();
  uint32_t c = 0xFFFFFFFFu;
  for (char ch : bytes) c = t[(c ^ static_cast<uint8_t>(ch)) & 0xff] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

bool looks_like_zip(std::string_view bytes) { return bytes.size() >= 4 && get32(bytes, 0) == kLocalSig; }

ZipReader::ZipReader(std::string_view bytes, std::string what) : bytes_(bytes), what_(std::move(what)) {
  GNDET_CHECK(bytes.size() >= kEndSize, what_, ": not a ZIP archive (", bytes.size(), " bytes; truncated?)");
  // The end record sits in the last 22 + 65535 (comment) bytes; search backwards for its signature.
  size_t end = std::string::npos;
  const size_t lowest = bytes.size() > kEndSize + 0xffff ? bytes.size() - kEndSize - 0xffff : 0;
  for (size_t at = bytes.size() - kEndSize + 1; at-- > lowest;) {
    if (get32(bytes, at) == kEndSig) {
      end = at;
      break;
    }
  }
  GNDET_CHECK(end != std::string::npos, what_,
              ": ZIP end-of-central-directory record not found (the file is truncated or not a ZIP archive)");
  const uint16_t count = get16(bytes, end + 10);
  const uint32_t dir_size = get32(bytes, end + 12);
  const uint32_t dir_offset = get32(bytes, end + 16);
  GNDET_CHECK(count != 0xffff && dir_offset != 0xffffffffu, what_,
              ": ZIP64 archives (over 4 GiB or 65535 entries) are not supported");
  GNDET_CHECK(static_cast<uint64_t>(dir_offset) + dir_size <= end, what_, ": ZIP central directory (offset ",
              dir_offset, ", ", dir_size, " bytes) runs past its end record (truncated or corrupt)");
  size_t at = dir_offset;
  for (uint16_t i = 0; i < count; ++i) {
    GNDET_CHECK(at + kCentralHeaderSize <= end && get32(bytes, at) == kCentralSig, what_,
                ": corrupt ZIP central directory at entry ", i, " (offset ", at, ")");
    ZipEntry e;
    const uint16_t flags = get16(bytes, at + 8);
    e.method = get16(bytes, at + 10);
    e.crc = get32(bytes, at + 16);
    e.compressed_size = get32(bytes, at + 20);
    e.size = get32(bytes, at + 24);
    const size_t name_len = get16(bytes, at + 28), extra_len = get16(bytes, at + 30), comment_len = get16(bytes, at + 32);
    e.local_header_offset = get32(bytes, at + 42);
    GNDET_CHECK(at + kCentralHeaderSize + name_len + extra_len + comment_len <= end, what_,
                ": corrupt ZIP central directory at entry ", i);
    e.name.assign(bytes.substr(at + kCentralHeaderSize, name_len));
    GNDET_CHECK((flags & 1) == 0, what_, ": entry '", e.name, "' is encrypted");
    GNDET_CHECK(e.compressed_size != 0xffffffffu && e.size != 0xffffffffu && e.local_header_offset != 0xffffffffu,
                what_, ": entry '", e.name, "' uses ZIP64 sizes, which are not supported");
    entries_.push_back(std::move(e));
    at += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
}

const ZipEntry* ZipReader::find(const std::string& name) const {
  for (const ZipEntry& e : entries_) {
    if (e.name == name) return &e;
  }
  return nullptr;
}

std::string ZipReader::read(const std::string& name) const {
  const ZipEntry* e = find(name);
  GNDET_CHECK(e != nullptr, what_, ": the archive has no entry '", name, "'");
  return read(*e);
}

std::string ZipReader::read(const ZipEntry& e) const {
  const std::string where = what_ + ", entry '" + e.name + "'";
  const uint64_t h = e.local_header_offset;
  GNDET_CHECK(h + kLocalHeaderSize <= bytes_.size() && get32(bytes_, h) == kLocalSig, where,
              ": bad local header offset ", h, " (truncated or corrupt archive)");
  const uint64_t data = h + kLocalHeaderSize + get16(bytes_, h + 26) + get16(bytes_, h + 28);
  GNDET_CHECK(data <= bytes_.size() && e.compressed_size <= bytes_.size() - data, where, ": its ", e.compressed_size,
              " bytes run past the end of the archive (truncated)");
  const std::string_view raw = bytes_.substr(data, e.compressed_size);
  std::string out;
  if (e.method == 0) {
    GNDET_CHECK(e.size == e.compressed_size, where, ": stored entry with different sizes (", e.size, " vs ",
                e.compressed_size, ")");
    out.assign(raw);
  } else if (e.method == 8) {
    out = inflate_raw(raw, e.size, where);
  } else {
    GNDET_FAIL(where, ": compression method ", e.method, " is not supported (only stored and deflated)");
  }
  GNDET_CHECK(crc32(out) == e.crc, where, ": CRC-32 mismatch (the file is corrupt)");
  return out;
}

void ZipWriter::add(const std::string& name, std::string_view data) {
  GNDET_CHECK(name.size() < 0xffff && data.size() < 0xffffffffu && out_.size() < 0xffffffffu,
              "zip writer: entry '", name, "' is too large (ZIP64 is not written)");
  ZipEntry e;
  e.name = name;
  e.crc = crc32(data);
  e.size = e.compressed_size = data.size();
  e.local_header_offset = out_.size();
  // Pad the extra field so that the data starts on a 64-byte boundary (extra block id "FB", as torch).
  const size_t base = out_.size() + kLocalHeaderSize + name.size() + 4;
  const size_t pad = (kAlignment - base % kAlignment) % kAlignment;
  put32(out_, kLocalSig);
  put16(out_, 20);  // version needed
  put16(out_, 0);   // flags
  put16(out_, 0);   // stored
  put16(out_, 0);   // time
  put16(out_, 0x21);  // date: 1980-01-01
  put32(out_, e.crc);
  put32(out_, static_cast<uint32_t>(e.size));
  put32(out_, static_cast<uint32_t>(e.size));
  put16(out_, static_cast<uint16_t>(name.size()));
  put16(out_, static_cast<uint16_t>(4 + pad));
  out_ += name;
  put16(out_, 0x4246);  // "FB"
  put16(out_, static_cast<uint16_t>(pad));
  out_.append(pad, 'Z');
  out_.append(data);
  entries_.push_back(std::move(e));
}

std::string ZipWriter::finish() {
  GNDET_CHECK(entries_.size() < 0xffff && out_.size() < 0xffffffffu, "zip writer: archive too large (ZIP64 is not written)");
  const uint32_t dir_offset = static_cast<uint32_t>(out_.size());
  for (const ZipEntry& e : entries_) {
    put32(out_, kCentralSig);
    put16(out_, 20);  // made by
    put16(out_, 20);  // needed
    put16(out_, 0);
    put16(out_, 0);
    put16(out_, 0);
    put16(out_, 0x21);
    put32(out_, e.crc);
    put32(out_, static_cast<uint32_t>(e.compressed_size));
    put32(out_, static_cast<uint32_t>(e.size));
    put16(out_, static_cast<uint16_t>(e.name.size()));
    put16(out_, 0);  // extra
    put16(out_, 0);  // comment
    put16(out_, 0);  // disk
    put16(out_, 0);  // internal attributes
    put32(out_, 0);  // external attributes
    put32(out_, static_cast<uint32_t>(e.local_header_offset));
    out_ += e.name;
  }
  const uint32_t dir_size = static_cast<uint32_t>(out_.size() - dir_offset);
  put32(out_, kEndSig);
  put16(out_, 0);
  put16(out_, 0);
  put16(out_, static_cast<uint16_t>(entries_.size()));
  put16(out_, static_cast<uint16_t>(entries_.size()));
  put32(out_, dir_size);
  put32(out_, dir_offset);
  put16(out_, 0);
  entries_.clear();
  return std::move(out_);
}

}  // namespace gndet::nn::ckpt
