#include "data/image.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "tensor/config.h"  // read_text_file: a file's bytes, with the errors of every reader
#include "tensor/factory.h"
#include "tensor/safetensors.h"

// stb's implementations live in this translation unit only, as static functions, so they cannot
// collide with the libstb shared library that the stb pkg-config file links.
#define STB_IMAGE_STATIC
// Formats that detection datasets do not use are left out: fuzzing found signed overflow (UB)
// in stb 2.27's PNM header parser ("P6 4 3 2555...5"), and PSD, PIC and HDR have had similar
// reports. JPEG, PNG, BMP, GIF and TGA remain.
#define STBI_NO_PNM
#define STBI_NO_PSD
#define STBI_NO_PIC
#define STBI_NO_HDR
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace gndet::data {
namespace {

// stb keeps the last failure in a global that it never clears, and some paths fail without setting
// it (or set it to ""): the reason is reset before each call and an empty one is said to be empty.
std::string stb_reason() {
  const char* r = stbi_failure_reason();
  return r != nullptr && *r != '\0' ? std::string(r) : std::string("the decoder gave no reason");
}

// Two JPEG defects that stb 2.27 (Debian 12's libstb-dev) does not catch, both found by fuzzing
// and checked by later stb versions: a DHT segment declaring more than 256 codes (stb writes past
// a Huffman table's 257-entry size list), and a scan that uses a Huffman table no DHT defined
// (stb decodes with uninitialised tables: its assert fires, or symbols index out of bounds).
// Such files are refused before stb reads them: the segments are walked as stb walks them
// (lengths respected, markers found in entropy-coded data), bytes past the end reading as 0.
bool jpeg_huffman_tables_ok(const std::string& b) {
  auto at = [&](size_t i) -> unsigned { return i < b.size() ? static_cast<unsigned char>(b[i]) : 0u; };
  size_t p = 1;
  while (at(0) == 0xFF && at(p) == 0xFF && p < b.size()) ++p;  // stb skips fill bytes before SOI too
  if (at(0) != 0xFF || at(p) != 0xD8) return true;              // not a JPEG
  ++p;
  bool defined[2][4] = {};  // [DC, AC][table id]
  bool progressive = false;
  while (p + 1 < b.size()) {
    const unsigned m = at(p + 1);
    if (at(p) != 0xFF || m == 0xFF) {  // entropy-coded data or fill bytes: on to the next marker
      ++p;
      continue;
    }
    if (m == 0x00 || m == 0x01 || (m >= 0xD0 && m <= 0xD8)) {  // stuffed byte, TEM, RSTn, SOI
      p += 2;
      continue;
    }
    if (m == 0xD9) return true;  // EOI
    const size_t length = at(p + 2) << 8 | at(p + 3);  // counts its own two bytes
    if (m == 0xC2) progressive = true;
    if (m == 0xC4) {
      for (size_t q = p + 4; q < p + 2 + length;) {  // tables: class/id byte, 16 counts, the codes
        unsigned codes = 0;
        for (size_t i = 1; i <= 16; ++i) codes += at(q + i);
        if (codes > 256) return false;
        if (at(q) >> 4 <= 1 && (at(q) & 15) <= 3) defined[at(q) >> 4][at(q) & 15] = true;
        q += 17 + codes;
      }
    }
    if (m == 0xDA) {  // SOS: Ns, Ns x (component, DC table << 4 | AC table), Ss, Se, Ah << 4 | Al
      const unsigned ns = at(p + 4), ss = at(p + 5 + 2 * ns), ah = at(p + 7 + 2 * ns) >> 4;
      // stb: a baseline scan decodes with both tables; a progressive one with the DC table in a
      // first DC scan (Ss = 0, Ah = 0) and with the AC table in any AC scan (Ss > 0).
      const bool uses_dc = !progressive || (ss == 0 && ah == 0), uses_ac = !progressive || ss > 0;
      for (unsigned i = 0; i < ns && i < 4; ++i) {
        const unsigned td = at(p + 6 + 2 * i) >> 4, ta = at(p + 6 + 2 * i) & 15;
        if (td > 3 || ta > 3) return true;  // stb refuses these itself
        if ((uses_dc && !defined[0][td]) || (uses_ac && !defined[1][ta])) return false;
      }
    }
    p += 2 + std::max<size_t>(length, 2);
  }
  return true;
}

// stb allocates a PNG's IDAT chunk at its declared length before reading it: 111 bytes asked for
// 1.3 GB (found by fuzzing). A chunk longer than what is left of the file is refused first, and
// so is an empty first IDAT.
bool png_chunks_fit(const std::string& b) {
  static const char kSignature[] = "\x89PNG\r\n\x1a\n";
  if (b.compare(0, 8, kSignature, 8) != 0) return true;  // not a PNG
  auto be32 = [&](size_t i) {
    return uint64_t{static_cast<unsigned char>(b[i])} << 24 | uint64_t{static_cast<unsigned char>(b[i + 1])} << 16 |
           uint64_t{static_cast<unsigned char>(b[i + 2])} << 8 | uint64_t{static_cast<unsigned char>(b[i + 3])};
  };
  bool idat_data = false;
  for (size_t p = 8; p + 8 <= b.size();) {
    const uint64_t length = be32(p);  // data bytes; the chunk adds 4 (length) + 4 (type) + 4 (CRC)
    if (p + 12 + length > b.size()) return false;
    if (b.compare(p + 4, 4, "IEND") == 0) return true;
    if (b.compare(p + 4, 4, "IDAT") == 0) {
      // An empty first IDAT makes stb memcpy 0 bytes to a null buffer (UB; found by fuzzing).
      if (length == 0 && !idat_data) return false;
      idat_data = idat_data || length > 0;
    }
    p += 12 + length;
  }
  return true;  // ends without IEND: stb says so
}

// A few hundred bytes can declare a 16384 x 16384 image, which stb allocates before reading:
// refuse more pixels than a detection input has (2^26, e.g. 8192 x 8192; 192 MiB as RGB).
constexpr int64_t kMaxImagePixels = int64_t{1} << 26;
constexpr int64_t kSmallImagePixels = int64_t{1} << 20;  // below this, any file size is believed

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

}  // namespace

Tensor decode_image(const std::string& bytes, const std::string& name) {
  GNDET_CHECK(!bytes.empty(), "cannot decode image '", name, "': the file is empty");
  GNDET_CHECK(bytes.size() <= static_cast<size_t>(std::numeric_limits<int>::max()), "cannot decode image '", name,
              "': ", bytes.size(), " bytes is more than stb_image accepts");
  GNDET_CHECK(jpeg_huffman_tables_ok(bytes), "cannot decode image '", name, "': corrupt JPEG (a Huffman table ",
              "declares more than 256 codes, or a scan uses one that was never defined)");
  GNDET_CHECK(png_chunks_fit(bytes), "cannot decode image '", name, "': corrupt or truncated PNG (a chunk is ",
              "longer than the rest of the file, or the first IDAT is empty)");
  int w = 0, h = 0, channels = 0;
  stbi__g_failure_reason = nullptr;
  // The size first: stb_info reads the header only. Refused here when it fails (load would too),
  // so the checks below always run. A top-down BMP reports a negative height: sizes are taken whole.
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h,
                             &channels)) {
    GNDET_FAIL("cannot decode image '", name, "': ", stb_reason(),
               " (corrupt, truncated, or not a JPEG/PNG/BMP/GIF/TGA file)");
  }
  {
    const int64_t pixels = std::abs(static_cast<int64_t>(w)) * std::abs(static_cast<int64_t>(h));
    GNDET_CHECK(pixels <= kMaxImagePixels, "cannot decode image '", name, "': ", w, " x ", h,
                " pixels is more than the ", kMaxImagePixels, " gndet accepts");
    // Decoders read zeros past the end of a truncated file, so 62 bytes of TGA header decoded
    // 17486 x 1536 pixels of nothing (found by fuzzing: 28 s, 800 MB). Real images, even a flat
    // colour in PNG (deflate: at most ~1000:1) or JPEG, have fewer than 1000 pixels per byte.
    GNDET_CHECK(pixels <= std::max<int64_t>(kSmallImagePixels, 1000 * static_cast<int64_t>(bytes.size())),
                "cannot decode image '", name, "': ", w, " x ", h, " pixels from only ", bytes.size(),
                " bytes (more than 1000 pixels per byte): truncated or corrupt");
  }
  stbi__g_failure_reason = nullptr;
  // Ask for 3 channels: stb converts grey, grey+alpha and RGBA (dropping alpha) and 16-bit data.
  std::unique_ptr<stbi_uc, StbFree> pixels(stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                                                 static_cast<int>(bytes.size()), &w, &h, &channels, 3));
  if (!pixels) {
    GNDET_FAIL("cannot decode image '", name, "': ", stb_reason(),
               " (corrupt, truncated, or not a JPEG/PNG/BMP/GIF/TGA file)");
  }
  Tensor out = empty({h, w, 3}, kUInt8);
  std::memcpy(out.data<uint8_t>(), pixels.get(), static_cast<size_t>(h) * static_cast<size_t>(w) * 3);
  return out;
}

Tensor read_image(const std::string& path) { return decode_image(read_text_file(path, "image"), path); }

ImageSize read_image_size(const std::string& path) {
  const std::string bytes = read_text_file(path, "image");
  GNDET_CHECK(jpeg_huffman_tables_ok(bytes), "cannot read the size of image '", path, "': corrupt JPEG (a ",
              "Huffman table declares more than 256 codes, or a scan uses one that was never defined)");
  int w = 0, h = 0, channels = 0;
  stbi__g_failure_reason = nullptr;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h,
                             &channels)) {
    GNDET_FAIL("cannot read the size of image '", path, "': ", stb_reason());
  }
  return {h, w};
}

namespace {

Tensor checked_for_encoding(const Tensor& image, const char* op) {
  GNDET_CHECK(image.dtype() == kUInt8 && !image.is_cuda() &&
                  (image.dim() == 2 || (image.dim() == 3 && (image.size(2) == 3 || image.size(2) == 1))),
              op, ": expected an (H, W, 3), (H, W, 1) or (H, W) uint8 CPU image, got ", dtype_name(image.dtype()), " ",
              shape_str(image.shape()));
  GNDET_CHECK(image.numel() > 0 && image.size(0) < (1 << 24) && image.size(1) < (1 << 24), op,
              ": cannot encode an image of shape ", shape_str(image.shape()));
  return image.contiguous();
}

void append_bytes(void* ctx, void* data, int size) {
  static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), static_cast<size_t>(size));
}

}  // namespace

std::string encode_png(const Tensor& image) {
  const Tensor img = checked_for_encoding(image, "encode_png");
  const int h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1));
  const int comp = img.dim() == 3 ? static_cast<int>(img.size(2)) : 1;
  std::string out;
  const int ok = stbi_write_png_to_func(append_bytes, &out, w, h, comp, img.data<uint8_t>(), w * comp);
  GNDET_CHECK(ok != 0, "encode_png: stb_image_write failed on a ", h, " x ", w, " image");
  return out;
}

std::string encode_jpeg(const Tensor& image, int quality) {
  GNDET_CHECK(quality >= 1 && quality <= 100, "encode_jpeg: quality must be in 1..100, got ", quality);
  const Tensor img = checked_for_encoding(image, "encode_jpeg");
  const int h = static_cast<int>(img.size(0)), w = static_cast<int>(img.size(1));
  const int comp = img.dim() == 3 ? static_cast<int>(img.size(2)) : 1;
  std::string out;
  const int ok = stbi_write_jpg_to_func(append_bytes, &out, w, h, comp, img.data<uint8_t>(), quality);
  GNDET_CHECK(ok != 0, "encode_jpeg: stb_image_write failed on a ", h, " x ", w, " image");
  return out;
}

void write_png(const std::string& path, const Tensor& image) { write_file_atomic(path, encode_png(image)); }

}  // namespace gndet::data
