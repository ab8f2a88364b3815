#include "data/image.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <sstream>

#include "tensor/factory.h"
#include "tensor/safetensors.h"

// stb's implementations live in this translation unit only, as static functions, so they cannot
// collide with the libstb shared library that the stb pkg-config file links.
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

namespace gndet::data {
namespace {

std::string read_file_bytes(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  GNDET_CHECK(in.good(), "cannot open ", what, " '", path, "': ", std::strerror(errno));
  std::ostringstream os;
  os << in.rdbuf();
  GNDET_CHECK(!in.bad(), "error reading ", what, " '", path, "'");
  return os.str();
}

struct StbFree {
  void operator()(stbi_uc* p) const { stbi_image_free(p); }
};

}  // namespace

Tensor decode_image(const std::string& bytes, const std::string& name) {
  GNDET_CHECK(!bytes.empty(), "cannot decode image '", name, "': the file is empty");
  GNDET_CHECK(bytes.size() <= static_cast<size_t>(std::numeric_limits<int>::max()), "cannot decode image '", name,
              "': ", bytes.size(), " bytes is more than stb_image accepts");
  int w = 0, h = 0, channels = 0;
  // Ask for 3 channels: stb converts grey, grey+alpha and RGBA (dropping alpha) and 16-bit data.
  std::unique_ptr<stbi_uc, StbFree> pixels(stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                                                                 static_cast<int>(bytes.size()), &w, &h, &channels, 3));
  if (!pixels) {
    const char* reason = stbi_failure_reason();
    GNDET_FAIL("cannot decode image '", name, "': ", reason ? reason : "unknown reason",
               " (corrupt, truncated, or not a JPEG/PNG/BMP/GIF/PSD/PIC/PNM/TGA/HDR file)");
  }
  Tensor out = empty({h, w, 3}, kUInt8);
  std::memcpy(out.data<uint8_t>(), pixels.get(), static_cast<size_t>(h) * static_cast<size_t>(w) * 3);
  return out;
}

Tensor read_image(const std::string& path) { return decode_image(read_file_bytes(path, "image"), path); }

ImageSize read_image_size(const std::string& path) {
  const std::string bytes = read_file_bytes(path, "image");
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h,
                             &channels)) {
    const char* reason = stbi_failure_reason();
    GNDET_FAIL("cannot read the size of image '", path, "': ", reason ? reason : "unknown reason");
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
