// Image files: decoding (JPEG, PNG and the other formats stb_image reads) to 8-bit RGB, and PNG
// writing. gndet keeps decoded images as (H, W, 3) uint8 CPU tensors in RGB order; mmdetection's
// BGR convention is applied later, by Normalize (to_rgb = false).
#pragma once

#include <string>

#include "tensor/tensor.h"

namespace gndet::data {

struct ImageSize {
  int64_t height = 0;
  int64_t width = 0;
};

// -> (H, W, 3) uint8, RGB. Grey, grey + alpha and RGBA images are converted (alpha dropped);
// 16-bit PNGs are reduced to 8 bits. Throws gndet::Error naming the file and stb_image's reason
// for unreadable, corrupt, truncated or unsupported files.
Tensor read_image(const std::string& path);
// The same from bytes in memory; `name` is used in error messages.
Tensor decode_image(const std::string& bytes, const std::string& name);
// Size from the header alone (no pixel decoding).
ImageSize read_image_size(const std::string& path);

// image: (H, W, 3), (H, W, 1) or (H, W) uint8. Encodes a PNG in memory, then writes it atomically.
void write_png(const std::string& path, const Tensor& image);
std::string encode_png(const Tensor& image);
// Baseline JPEG (stb_image_write), quality 1..100; for previews and tests.
std::string encode_jpeg(const Tensor& image, int quality = 95);

}  // namespace gndet::data
