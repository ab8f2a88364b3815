// A small RGB raster for the pictures gndet writes: training curves and detections. Text uses
// stb_easy_font's 5x7-ish vector glyphs, scaled by an integer factor.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace gndet::app {

using Rgb = std::array<uint8_t, 3>;

class Canvas {
 public:
  Canvas(int64_t width, int64_t height, Rgb background = {255, 255, 255});
  // From an (H, W, 3) uint8 image.
  explicit Canvas(const Tensor& image);

  int64_t width() const { return width_; }
  int64_t height() const { return height_; }

  void fill_rect(int64_t x0, int64_t y0, int64_t x1, int64_t y1, Rgb color);  // [x0, x1) x [y0, y1), clipped
  void rect(double x0, double y0, double x1, double y1, Rgb color, int thickness = 1);
  void line(double x0, double y0, double x1, double y1, Rgb color, int thickness = 1);
  // Text with its top-left corner at (x, y); returns its width in pixels.
  int64_t text(int64_t x, int64_t y, const std::string& s, Rgb color, int scale = 1);
  static int64_t text_width(const std::string& s, int scale = 1);
  static int64_t text_height(int scale = 1) { return 8 * scale; }
  // Blends `color` with weight alpha over the pixels where mask (H, W) uint8 is non-zero.
  void blend_mask(const Tensor& mask, Rgb color, double alpha);

  Tensor to_image() const;  // (H, W, 3) uint8
  void save_png(const std::string& path) const;

 private:
  void put(int64_t x, int64_t y, Rgb c);
  int64_t width_, height_;
  std::vector<uint8_t> rgb_;
};

// A fixed palette of distinct colours, cycled by index.
Rgb palette(int64_t i);

}  // namespace gndet::app
