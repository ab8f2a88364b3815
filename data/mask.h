// Instance masks as COCO run-length encodings, byte-identical to pycocotools (common/maskApi.c).
//
// An Rle holds the runs of a binary (height, width) mask read in column-major order (down each
// column, then the next column), alternating zeros and ones and starting with zeros: a mask whose
// first pixel is set begins with a run of 0 zeros. Bitmaps in gndet are row-major (H, W) uint8,
// nonzero = inside; the encoders and decoders here do the transposition.
//
// Everything that pycocotools computes from an RLE (polygon rasterisation, merge, area, bounding
// box, IoU, the compressed string) follows maskApi.c's arithmetic step by step, including its
// integer types, so results compare bit for bit; the quirks kept on purpose are noted at each
// function.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tensor/tensor.h"

namespace gndet::data {

struct Rle {
  int64_t height = 0;
  int64_t width = 0;
  std::vector<uint32_t> counts;  // column-major runs, zeros first; they sum to height * width

  bool operator==(const Rle&) const = default;
};

using BoxXywh = std::array<double, 4>;  // x, y, width, height (COCO's bbox convention)

// ---- bitmaps ----
// bitmap: height * width bytes, row-major; nonzero pixels are inside.
Rle rle_encode(const uint8_t* bitmap, int64_t height, int64_t width);
// mask: (H, W) uint8 or bool.
Rle rle_encode(const Tensor& mask);
// Writes height * width bytes (0 or 1), row-major. Throws when the runs do not sum to h * w.
void rle_decode(const Rle& rle, uint8_t* bitmap);
Tensor rle_decode(const Rle& rle);  // -> (H, W) uint8
// All masks must be height x width. -> (K, H, W) uint8; (0, H, W) for none.
Tensor rle_decode_stack(std::span<const Rle> rles, int64_t height, int64_t width);

// ---- geometry -> RLE ----
// pycocotools' rleFrPoly: xy = x0, y0, x1, y1, ... (floor(n / 2) vertices, closed implicitly).
// The boundary is traced on a 5x upsampled grid and pixel x is inside where its column crosses
// the outline; an empty polygon gives an empty mask.
Rle rle_from_polygon(std::span<const double> xy, int64_t height, int64_t width);
// pycocotools' rleFrBbox: the box as a 4-vertex polygon.
Rle rle_from_box(const BoxXywh& box, int64_t height, int64_t width);

// ---- compressed strings (rleToString / rleFrString) ----
// 6 bits per char (ASCII 48..111), 5 data bits + a continuation bit, sign-extended; from the
// fourth run on, each run is coded as the difference to the run two before it.
std::string rle_to_string(const Rle& rle);
// Throws gndet::Error on a character outside 48..111 or a string that ends inside a number.
Rle rle_from_string(std::string_view counts, int64_t height, int64_t width);

// ---- operations ----
// Union (intersect = false) or intersection of masks of one size. As in pycocotools, masks of
// different sizes give an empty 0 x 0 RLE and an empty list gives one too.
Rle rle_merge(std::span<const Rle> rles, bool intersect);
uint32_t rle_area(const Rle& rle);
// Tight box (x, y, w, h) of the set pixels; (0, 0, 0, 0) for an RLE with fewer than two runs.
// A run that wraps from one column into the next spans the full height, as in pycocotools.
BoxXywh rle_to_box(const Rle& rle);

// IoU of every detection with every ground truth -> D * G values, row-major (d, g).
// iscrowd: G flags (or empty = none); for a crowd gt the union is replaced by the detection's own
// area (intersection over detection). Boxes use x, y, w, h.
std::vector<double> box_iou(std::span<const BoxXywh> dt, std::span<const BoxXywh> gt, std::span<const uint8_t> iscrowd);
// Masks whose sizes differ give -1 (pycocotools' convention), disjoint masks 0.
std::vector<double> rle_iou(std::span<const Rle> dt, std::span<const Rle> gt, std::span<const uint8_t> iscrowd);
std::vector<double> rle_iou(std::span<const Rle* const> dt, std::span<const Rle* const> gt,
                            std::span<const uint8_t> iscrowd);

}  // namespace gndet::data
