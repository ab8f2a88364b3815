#include "apps/canvas.h"

#include <algorithm>
#include <cmath>

#include "data/image.h"
#include "tensor/factory.h"

// stb_easy_font is a header of static functions; its unused ones would warn.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

namespace gndet::app {

Canvas::Canvas(int64_t width, int64_t height, Rgb background)
    : width_(width), height_(height), rgb_(static_cast<size_t>(width * height * 3)) {
  GNDET_CHECK(width > 0 && height > 0, "Canvas: empty size ", width, "x", height);
  for (size_t i = 0; i < rgb_.size(); i += 3) std::copy(background.begin(), background.end(), rgb_.begin() + i);
}

Canvas::Canvas(const Tensor& image) {
  GNDET_CHECK(image.dim() == 3 && image.size(2) == 3 && image.dtype() == kUInt8, "Canvas: expected an (H, W, 3) uint8 image, got ",
              shape_str(image.shape()), " ", dtype_name(image.dtype()));
  height_ = image.size(0);
  width_ = image.size(1);
  rgb_ = image.to_vector<uint8_t>();
}

void Canvas::put(int64_t x, int64_t y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  std::copy(c.begin(), c.end(), rgb_.begin() + (y * width_ + x) * 3);
}

void Canvas::fill_rect(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb color) {
  x0 = std::max<int64_t>(x0, 0);
  y0 = std::max<int64_t>(y0, 0);
  x1 = std::min(x1, width_);
  y1 = std::min(y1, height_);
  for (int64_t y = y0; y < y1; ++y) {
    for (int64_t x = x0; x < x1; ++x) put(x, y, color);
  }
}

void Canvas::line(double x0, double y0, double x1, double y1, Rgb color, int thickness) {
  const double len = std::max(std::abs(x1 - x0), std::abs(y1 - y0));
  const int64_t steps = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(len)));
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  for (int64_t i = 0; i <= steps; ++i) {
    const double t = static_cast<double>(i) / static_cast<double>(steps);
    const int64_t x = std::lround(x0 + t * (x1 - x0)), y = std::lround(y0 + t * (y1 - y0));
    for (int dy = lo; dy <= hi; ++dy) {
      for (int dx = lo; dx <= hi; ++dx) put(x + dx, y + dy, color);
    }
  }
}

void Canvas::rect(double x0, double y0, double x1, double y1, Rgb color, int thickness) {
  line(x0, y0, x1, y0, color, thickness);
  line(x1, y0, x1, y1, color, thickness);
  line(x1, y1, x0, y1, color, thickness);
  line(x0, y1, x0, y0, color, thickness);
}

int64_t Canvas::text_width(const std::string& s, int scale) {
  return static_cast<int64_t>(stb_easy_font_width(const_cast<char*>(s.c_str()))) * scale;
}

int64_t Canvas::text(int64_t x, int64_t y, const std::string& s, Rgb color, int scale) {
  // stb_easy_font emits axis-aligned quads (4 vertices of 16 bytes: x, y, z as floats, colour).
  // stb_easy_font averages ~270 bytes a character but digits like 0 and 8 take more, and it stops
  // silently when the buffer is full (that cut the last 0 off "800"): room for 32 quads a character.
  std::vector<char> buffer(s.size() * 32 * 64 + 64);
  const int quads = stb_easy_font_print(0, 0, const_cast<char*>(s.c_str()), nullptr, buffer.data(),
                                        static_cast<int>(buffer.size()));
  const float* v = reinterpret_cast<const float*>(buffer.data());
  for (int q = 0; q < quads; ++q) {
    const float* quad = v + q * 16;  // 4 vertices x 4 floats
    const float qx0 = quad[0], qy0 = quad[1], qx1 = quad[8], qy1 = quad[9];
    fill_rect(x + static_cast<int64_t>(qx0) * scale, y + static_cast<int64_t>(qy0) * scale,
              x + static_cast<int64_t>(qx1) * scale, y + static_cast<int64_t>(qy1) * scale, color);
  }
  return text_width(s, scale);
}

void Canvas::blend_mask(const Tensor& mask, Rgb color, double alpha) {
  GNDET_CHECK(mask.dim() == 2 && mask.size(0) == height_ && mask.size(1) == width_, "Canvas::blend_mask: mask of shape ",
              shape_str(mask.shape()), " for a ", width_, "x", height_, " canvas");
  const std::vector<uint8_t> m = mask.to(kUInt8).to_vector<uint8_t>();
  for (size_t i = 0; i < m.size(); ++i) {
    if (!m[i]) continue;
    for (int c = 0; c < 3; ++c) {
      uint8_t& p = rgb_[i * 3 + c];
      p = static_cast<uint8_t>(std::lround((1.0 - alpha) * p + alpha * color[c]));
    }
  }
}

Tensor Canvas::to_image() const { return from_data<uint8_t>(rgb_, {height_, width_, 3}); }

void Canvas::save_png(const std::string& path) const { data::write_png(path, to_image()); }

Rgb palette(int64_t i) {
  static const Rgb colors[] = {{230, 25, 75},  {60, 180, 75},  {0, 130, 200}, {245, 130, 48}, {145, 30, 180},
                               {70, 240, 240}, {240, 50, 230}, {210, 245, 60}, {0, 128, 128}, {170, 110, 40}};
  return colors[static_cast<size_t>(i) % (sizeof(colors) / sizeof(colors[0]))];
}

}  // namespace gndet::app
