#include "apps/tensorboard.h"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "data/image.h"

namespace gndet::app {
namespace {

// CRC-32C lookup table (reflected polynomial 0x82F63B78).
const std::array<uint32_t, 256>& crc_table() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  return table;
}

// ---- protobuf wire format: (field << 3 | wire type), varints little-endian base 128 ----
void varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void key(std::string& out, int field, int wire_type) { varint(out, static_cast<uint64_t>(field << 3 | wire_type)); }
void field_varint(std::string& out, int field, uint64_t v) {
  key(out, field, 0);
  varint(out, v);
}
void field_bytes(std::string& out, int field, const std::string& bytes) {
  key(out, field, 2);
  varint(out, bytes.size());
  out += bytes;
}
template <class T>
void little_endian(std::string& out, T v) {
  char b[sizeof(T)];
  std::memcpy(b, &v, sizeof(T));  // x86 and ARM Linux are little endian, as the format is
  out.append(b, sizeof(T));
}
void field_double(std::string& out, int field, double v) {
  key(out, field, 1);
  little_endian(out, v);
}
void field_float(std::string& out, int field, float v) {
  key(out, field, 5);
  little_endian(out, v);
}

std::string event(int64_t step) {
  std::string e;
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  field_double(e, 1, now);                         // wall_time
  field_varint(e, 2, static_cast<uint64_t>(step));  // step (int64, two's complement as varint)
  return e;
}

std::string summary_event(int64_t step, const std::string& value) {
  std::string summary;
  field_bytes(summary, 1, value);  // Summary.value
  std::string e = event(step);
  field_bytes(e, 5, summary);  // Event.summary
  return e;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size, uint32_t crc) {
  const auto& t = crc_table();
  const auto* p = static_cast<const uint8_t*>(data);
  crc = ~crc;
  for (size_t i = 0; i < size; ++i) crc = t[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t c = crc32c(data, size);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

TensorBoardWriter::TensorBoardWriter(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  GNDET_CHECK(!ec, "TensorBoard: cannot create ", dir, ": ", ec.message());
  char host[256] = "localhost";
  gethostname(host, sizeof host - 1);
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch()).count();
  path_ = (fs::path(dir) / ("events.out.tfevents." + std::to_string(secs) + "." + host + "." +
                            std::to_string(getpid()))).string();
  file_ = std::fopen(path_.c_str(), "wb");
  GNDET_CHECK(file_ != nullptr, "TensorBoard: cannot open ", path_, " for writing");
  std::string e = event(0);
  field_bytes(e, 3, "brain.Event:2");  // file_version
  write_event(e);
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::write_event(const std::string& data) {
  std::string record;
  const uint64_t length = data.size();
  little_endian(record, length);
  little_endian(record, masked_crc32c(record.data(), sizeof length));
  record += data;
  little_endian(record, masked_crc32c(data.data(), data.size()));
  GNDET_CHECK(std::fwrite(record.data(), 1, record.size(), file_) == record.size() && std::fflush(file_) == 0,
              "TensorBoard: cannot write to ", path_);
}

void TensorBoardWriter::scalar(const std::string& tag, double value, int64_t step) {
  std::string v;
  field_bytes(v, 1, tag);
  field_float(v, 2, static_cast<float>(value));  // simple_value
  write_event(summary_event(step, v));
}

void TensorBoardWriter::image(const std::string& tag, const Tensor& image, int64_t step) {
  GNDET_CHECK(image.dim() == 3 && image.size(2) == 3, "TensorBoard image '", tag, "': expected (H, W, 3), got ",
              shape_str(image.shape()));
  std::string img;
  field_varint(img, 1, static_cast<uint64_t>(image.size(0)));  // height
  field_varint(img, 2, static_cast<uint64_t>(image.size(1)));  // width
  field_varint(img, 3, 3);                                     // colorspace: RGB
  field_bytes(img, 4, data::encode_png(image));                // encoded_image_string
  std::string v;
  field_bytes(v, 1, tag);
  field_bytes(v, 4, img);  // Value.image
  write_event(summary_event(step, v));
}

}  // namespace gndet::app
