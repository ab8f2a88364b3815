#include "data/mask.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "tensor/factory.h"

namespace gndet::data {
namespace {

// The RLE of an all-zero mask.
Rle empty_rle(int64_t height, int64_t width) { return Rle{height, width, {static_cast<uint32_t>(height * width)}}; }

void check_size(int64_t height, int64_t width, const char* op) {
  GNDET_CHECK(height >= 0 && width >= 0 && height * width <= int64_t{UINT32_MAX}, op, ": mask size ", height, " x ",
              width, " is negative or has more than 2^32 pixels");
}

}  // namespace

Rle rle_encode(const uint8_t* bitmap, int64_t height, int64_t width) {
  check_size(height, width, "rle_encode");
  Rle rle{height, width, {}};
  bool current = false;
  uint32_t run = 0;
  for (int64_t x = 0; x < width; ++x) {
    for (int64_t y = 0; y < height; ++y) {
      const bool inside = bitmap[y * width + x] != 0;
      if (inside != current) {
        rle.counts.push_back(run);
        run = 0;
        current = inside;
      }
      ++run;
    }
  }
  rle.counts.push_back(run);
  return rle;
}

Rle rle_encode(const Tensor& mask) {
  GNDET_CHECK(mask.dim() == 2 && (mask.dtype() == kUInt8 || mask.dtype() == kBool) && !mask.is_cuda(),
              "rle_encode: expected an (H, W) uint8 or bool CPU mask, got ", dtype_name(mask.dtype()), " ",
              shape_str(mask.shape()));
  const Tensor m = mask.contiguous();
  return rle_encode(static_cast<const uint8_t*>(m.raw_data()), m.size(0), m.size(1));
}

void rle_decode(const Rle& rle, uint8_t* bitmap) {
  const int64_t h = rle.height, w = rle.width, n = h * w;
  int64_t total = 0;
  for (uint32_t c : rle.counts) total += c;
  GNDET_CHECK(total == n, "rle_decode: the runs sum to ", total, " pixels, but the mask is ", h, " x ", w, " = ", n);
  std::memset(bitmap, 0, static_cast<size_t>(n));
  int64_t pos = 0;
  for (size_t j = 0; j < rle.counts.size(); ++j) {
    const int64_t end = pos + rle.counts[j];
    if (j % 2 == 1) {
      for (int64_t p = pos; p < end; ++p) bitmap[(p % h) * w + p / h] = 1;
    }
    pos = end;
  }
}

Tensor rle_decode(const Rle& rle) {
  Tensor out = empty({rle.height, rle.width}, kUInt8);
  rle_decode(rle, out.data<uint8_t>());
  return out;
}

Tensor rle_decode_stack(std::span<const Rle> rles, int64_t height, int64_t width) {
  Tensor out = empty({static_cast<int64_t>(rles.size()), height, width}, kUInt8);
  uint8_t* p = out.data<uint8_t>();
  for (size_t k = 0; k < rles.size(); ++k) {
    GNDET_CHECK(rles[k].height == height && rles[k].width == width, "rle_decode_stack: mask ", k, " is ",
                rles[k].height, " x ", rles[k].width, ", expected ", height, " x ", width);
    rle_decode(rles[k], p + static_cast<int64_t>(k) * height * width);
  }
  return out;
}

namespace {

// Keeps the part of the closed polygon xy inside [x0, x1] x [y0, y1] (Sutherland-Hodgman, one
// half-plane at a time). The region inside the rectangle is unchanged; new vertices lie on its sides.
std::vector<double> clip_polygon(std::span<const double> xy, double x0, double x1, double y0, double y1) {
  std::vector<double> in(xy.begin(), xy.end()), out;
  for (int side = 0; side < 4; ++side) {
    const int axis = side / 2;  // 0: x, 1: y
    const double bound = side == 0 ? x0 : side == 1 ? x1 : side == 2 ? y0 : y1;
    const bool keep_above = side % 2 == 0;
    auto inside = [&](size_t p) { return keep_above ? in[2 * p + axis] >= bound : in[2 * p + axis] <= bound; };
    const size_t n = in.size() / 2;
    out.clear();
    for (size_t c = 0; c < n; ++c) {
      const size_t p = (c + n - 1) % n;
      const bool c_in = inside(c), p_in = inside(p);
      if (c_in != p_in) {  // the edge p -> c crosses the side: add the crossing point
        const double t = (bound - in[2 * p + axis]) / (in[2 * c + axis] - in[2 * p + axis]);
        double q[2] = {in[2 * p] + t * (in[2 * c] - in[2 * p]), in[2 * p + 1] + t * (in[2 * c + 1] - in[2 * p + 1])};
        q[axis] = bound;
        out.insert(out.end(), q, q + 2);
      }
      if (c_in) out.insert(out.end(), {in[2 * c], in[2 * c + 1]});
    }
    std::swap(in, out);
  }
  return in;
}

}  // namespace

Rle rle_from_polygon(std::span<const double> xy_in, int64_t height, int64_t width) {
  check_size(height, width, "rle_from_polygon");
  // Sides up to 10^8 keep every 5x grid coordinate below (with the margin below) well inside int.
  GNDET_CHECK(height <= 100'000'000 && width <= 100'000'000, "rle_from_polygon: mask size ", height, " x ", width,
              " has a side longer than 10^8 pixels");
  for (size_t j = 0; j + 1 < xy_in.size(); j += 2) {
    GNDET_CHECK(std::isfinite(xy_in[j]) && std::isfinite(xy_in[j + 1]), "rle_from_polygon: vertex ", j / 2, " (",
                xy_in[j], ", ", xy_in[j + 1], ") is not finite");
  }
  // Vertices far outside the image (1e9: a bad annotation) would overflow the int grid below and
  // make the edge walk billions of points long. Polygons reaching beyond a margin around the image
  // (one image side, at least 1024 pixels) are clipped to it: the region over the image is the
  // same, but the cut edges' grid rounding may differ from pycocotools (the live cross-check found
  // one such difference when the margin was one side of a 3 x 2 mask). Polygons within the margin,
  // i.e. every sane annotation, are untouched and match pycocotools bit for bit; an edge walk stays
  // at most 5 x sqrt(2) x (side + 2050) points long.
  const double margin = static_cast<double>(std::max<int64_t>(std::max(height, width), 1024)) + 1;
  const double x0 = -margin, x1 = static_cast<double>(width) + margin;
  const double y0 = -margin, y1 = static_cast<double>(height) + margin;
  std::vector<double> clipped;
  std::span<const double> xy = xy_in.first(xy_in.size() / 2 * 2);
  for (size_t j = 0; j < xy.size(); j += 2) {
    if (xy[j] < x0 || xy[j] > x1 || xy[j + 1] < y0 || xy[j + 1] > y1) {
      clipped = clip_polygon(xy, x0, x1, y0, y1);
      xy = clipped;
      break;
    }
  }
  const size_t k = xy.size() / 2;
  if (k == 0) return empty_rle(height, width);
  // Vertices on a grid 5x finer than the pixels, rounded as C's (int)(v + .5) does (toward zero).
  constexpr double kScale = 5;
  std::vector<int> vx(k + 1), vy(k + 1);
  for (size_t j = 0; j < k; ++j) {
    vx[j] = static_cast<int>(kScale * xy[2 * j] + .5);
    vy[j] = static_cast<int>(kScale * xy[2 * j + 1] + .5);
  }
  vx[k] = vx[0];
  vy[k] = vy[0];

  // Every grid point along each edge, walking from the edge's first vertex to its last; the
  // stepping axis is the longer one and the other coordinate is rounded from the line equation.
  std::vector<int> u, v;
  for (size_t j = 0; j < k; ++j) {
    int xs = vx[j], xe = vx[j + 1], ys = vy[j], ye = vy[j + 1];
    const int dx = std::abs(xe - xs), dy = std::abs(ys - ye);
    const bool flip = (dx >= dy && xs > xe) || (dx < dy && ys > ye);
    if (flip) {
      std::swap(xs, xe);
      std::swap(ys, ye);
    }
    if (dx == 0 && dy == 0) {
      // maskApi.c divides 0 by 0 here; the point it emits is never read (its column equals its
      // neighbours'), so the vertex itself stands in.
      u.push_back(xs);
      v.push_back(ys);
    } else if (dx >= dy) {
      const double slope = static_cast<double>(ye - ys) / dx;
      for (int d = 0; d <= dx; ++d) {
        const int t = flip ? dx - d : d;
        u.push_back(t + xs);
        v.push_back(static_cast<int>(ys + slope * t + .5));
      }
    } else {
      const double slope = static_cast<double>(xe - xs) / dy;
      for (int d = 0; d <= dy; ++d) {
        const int t = flip ? dy - d : d;
        v.push_back(t + ys);
        u.push_back(static_cast<int>(xs + slope * t + .5));
      }
    }
  }

  // Where the outline crosses from one fine column to the next at a pixel centre, the topmost
  // pixel at or below the crossing starts or ends a vertical run.
  std::vector<uint32_t> starts;  // column-major pixel indices where the inside/outside state toggles
  const double max_x = static_cast<double>(static_cast<uint64_t>(width) - 1);
  for (size_t j = 1; j < u.size(); ++j) {
    if (u[j] == u[j - 1]) continue;
    double xd = static_cast<double>(u[j] < u[j - 1] ? u[j] : u[j] - 1);
    xd = (xd + .5) / kScale - .5;
    if (std::floor(xd) != xd || xd < 0 || xd > max_x) continue;
    double yd = static_cast<double>(v[j] < v[j - 1] ? v[j] : v[j - 1]);
    yd = (yd + .5) / kScale - .5;
    if (yd < 0) {
      yd = 0;
    } else if (yd > static_cast<double>(height)) {
      yd = static_cast<double>(height);
    }
    yd = std::ceil(yd);
    // maskApi.c: (uint)(x * h + y) with h unsigned, so the product is taken modulo 2^32, never signed.
    starts.push_back(static_cast<uint32_t>(static_cast<int>(xd)) * static_cast<uint32_t>(height) +
                     static_cast<uint32_t>(static_cast<int>(yd)));
  }
  starts.push_back(static_cast<uint32_t>(height * width));
  std::sort(starts.begin(), starts.end());

  // Toggle positions -> run lengths; two toggles at one position cancel, which maskApi.c expresses
  // by folding the run after a zero-length run into the run before it.
  uint32_t previous = 0;
  for (uint32_t& s : starts) {
    const uint32_t t = s;
    s -= previous;
    previous = t;
  }
  Rle rle{height, width, {}};
  rle.counts.push_back(starts[0]);
  for (size_t j = 1; j < starts.size();) {
    if (starts[j] > 0) {
      rle.counts.push_back(starts[j++]);
    } else {
      ++j;
      if (j < starts.size()) rle.counts.back() += starts[j++];
    }
  }
  return rle;
}

Rle rle_from_box(const BoxXywh& box, int64_t height, int64_t width) {
  const double xs = box[0], xe = xs + box[2], ys = box[1], ye = ys + box[3];
  const double xy[8] = {xs, ys, xs, ye, xe, ye, xe, ys};
  return rle_from_polygon(xy, height, width);
}

std::string rle_to_string(const Rle& rle) {
  std::string s;
  s.reserve(rle.counts.size() * 2);
  for (size_t i = 0; i < rle.counts.size(); ++i) {
    int64_t x = rle.counts[i];
    if (i > 2) x -= rle.counts[i - 2];  // maskApi.c starts the delta coding at the fourth run
    bool more = true;
    while (more) {
      char c = static_cast<char>(x & 0x1f);
      x >>= 5;  // arithmetic shift: negative deltas end in a run of sign bits
      more = (c & 0x10) ? x != -1 : x != 0;
      if (more) c |= 0x20;
      s.push_back(static_cast<char>(c + 48));
    }
  }
  return s;
}

Rle rle_from_string(std::string_view counts, int64_t height, int64_t width) {
  check_size(height, width, "rle_from_string");
  Rle rle{height, width, {}};
  size_t p = 0;
  while (p < counts.size()) {
    int64_t x = 0;
    int k = 0;
    bool more = true;
    while (more) {
      GNDET_CHECK(p < counts.size(), "compressed RLE string ends inside a number (", counts.size(),
                  " characters); the string is truncated");
      const int c = static_cast<unsigned char>(counts[p]) - 48;
      GNDET_CHECK(c >= 0 && c < 64 && k < 12, "compressed RLE string: character ", p, " ('", counts[p],
                  "') is not a valid RLE character (ASCII 48..111)");
      x |= static_cast<int64_t>(c & 0x1f) << (5 * k);
      more = (c & 0x20) != 0;
      ++p;
      ++k;
      if (!more && (c & 0x10)) x |= static_cast<int64_t>(-1) * (int64_t{1} << (5 * k));  // sign-extend
    }
    const size_t m = rle.counts.size();
    if (m > 2) x += rle.counts[m - 2];
    rle.counts.push_back(static_cast<uint32_t>(x));
  }
  return rle;
}

Rle rle_merge(std::span<const Rle> rles, bool intersect) {
  if (rles.empty()) return Rle{};
  if (rles.size() == 1) return rles[0];
  const int64_t h = rles[0].height, w = rles[0].width;
  std::vector<uint32_t> acc = rles[0].counts, merged;
  for (size_t i = 1; i < rles.size(); ++i) {
    const Rle& b = rles[i];
    if (b.height != h || b.width != w) return Rle{};
    const std::vector<uint32_t>& a = acc;
    // Walk both run lists in step: each iteration consumes the shorter of the two current runs and
    // emits a run whenever the combined value changes (or both lists end). Zero-length runs are
    // consumed one per iteration, exactly as maskApi.c's rleMerge does.
    uint32_t ca = a.empty() ? 0 : a[0], cb = b.counts.empty() ? 0 : b.counts[0];
    bool va = false, vb = false, value = false;
    size_t ia = 1, ib = 1;
    uint32_t run = 0, remaining = 1;
    merged.clear();
    while (remaining > 0) {
      const uint32_t c = std::min(ca, cb);
      run += c;
      remaining = 0;
      ca -= c;
      if (ca == 0 && ia < a.size()) {
        ca = a[ia++];
        va = !va;
      }
      remaining += ca;
      cb -= c;
      if (cb == 0 && ib < b.counts.size()) {
        cb = b.counts[ib++];
        vb = !vb;
      }
      remaining += cb;
      const bool previous = value;
      value = intersect ? (va && vb) : (va || vb);
      if (value != previous || remaining == 0) {
        merged.push_back(run);
        run = 0;
      }
    }
    acc.swap(merged);
  }
  return Rle{h, w, std::move(acc)};
}

uint32_t rle_area(const Rle& rle) {
  uint32_t area = 0;
  for (size_t j = 1; j < rle.counts.size(); j += 2) area += rle.counts[j];
  return area;
}

BoxXywh rle_to_box(const Rle& rle) {
  // uint32 arithmetic as in maskApi.c's rleToBbox (an odd trailing run of zeros is ignored).
  const uint32_t h = static_cast<uint32_t>(rle.height), w = static_cast<uint32_t>(rle.width);
  const size_t m = rle.counts.size() / 2 * 2;
  if (m == 0 || h == 0) return {0, 0, 0, 0};  // (pycocotools would divide by a zero height)
  uint32_t xs = w, ys = h, xe = 0, ye = 0, cc = 0, xp = 0;
  for (size_t j = 0; j < m; ++j) {
    cc += rle.counts[j];
    const uint32_t t = cc - static_cast<uint32_t>(j % 2);
    const uint32_t y = t % h, x = (t - y) / h;
    if (j % 2 == 0) {
      xp = x;
    } else if (xp < x) {
      ys = 0;
      ye = h - 1;
    }
    xs = std::min(xs, x);
    xe = std::max(xe, x);
    ys = std::min(ys, y);
    ye = std::max(ye, y);
  }
  return {static_cast<double>(xs), static_cast<double>(ys), static_cast<double>(xe - xs + 1),
          static_cast<double>(ye - ys + 1)};
}

std::vector<double> box_iou(std::span<const BoxXywh> dt, std::span<const BoxXywh> gt,
                            std::span<const uint8_t> iscrowd) {
  GNDET_CHECK(iscrowd.empty() || iscrowd.size() == gt.size(), "box_iou: ", iscrowd.size(), " crowd flags for ",
              gt.size(), " ground-truth boxes");
  const size_t D = dt.size(), G = gt.size();
  std::vector<double> out(D * G, 0.0);
  for (size_t g = 0; g < G; ++g) {
    const BoxXywh& gb = gt[g];
    const double ga = gb[2] * gb[3];
    const bool crowd = !iscrowd.empty() && iscrowd[g];
    for (size_t d = 0; d < D; ++d) {
      const BoxXywh& db = dt[d];
      const double da = db[2] * db[3];
      const double iw = std::fmin(db[2] + db[0], gb[2] + gb[0]) - std::fmax(db[0], gb[0]);
      if (iw <= 0) continue;
      const double ih = std::fmin(db[3] + db[1], gb[3] + gb[1]) - std::fmax(db[1], gb[1]);
      if (ih <= 0) continue;
      const double inter = iw * ih;
      const double uni = crowd ? da : da + ga - inter;
      out[d * G + g] = inter / uni;
    }
  }
  return out;
}

std::vector<double> rle_iou(std::span<const Rle> dt, std::span<const Rle> gt, std::span<const uint8_t> iscrowd) {
  std::vector<const Rle*> dp(dt.size()), gp(gt.size());
  for (size_t d = 0; d < dt.size(); ++d) dp[d] = &dt[d];
  for (size_t g = 0; g < gt.size(); ++g) gp[g] = &gt[g];
  return rle_iou(std::span<const Rle* const>(dp), std::span<const Rle* const>(gp), iscrowd);
}

std::vector<double> rle_iou(std::span<const Rle* const> dt, std::span<const Rle* const> gt,
                            std::span<const uint8_t> iscrowd) {
  const size_t D = dt.size(), G = gt.size();
  std::vector<BoxXywh> dboxes(D), gboxes(G);
  for (size_t d = 0; d < D; ++d) dboxes[d] = rle_to_box(*dt[d]);
  for (size_t g = 0; g < G; ++g) gboxes[g] = rle_to_box(*gt[g]);
  // Boxes that do not overlap cannot hold overlapping masks: only the others are walked.
  std::vector<double> out = box_iou(dboxes, gboxes, iscrowd);
  for (size_t g = 0; g < G; ++g) {
    const bool crowd = !iscrowd.empty() && iscrowd[g];
    const Rle& b = *gt[g];
    for (size_t d = 0; d < D; ++d) {
      double& o = out[d * G + g];
      if (!(o > 0)) continue;
      const Rle& a = *dt[d];
      if (a.height != b.height || a.width != b.width) {
        o = -1;
        continue;
      }
      uint32_t ca = a.counts[0], cb = b.counts[0], inter = 0, uni = 0, remaining = 1;
      bool va = false, vb = false;
      size_t ia = 1, ib = 1;
      while (remaining > 0) {
        const uint32_t c = std::min(ca, cb);
        if (va || vb) {
          uni += c;
          if (va && vb) inter += c;
        }
        remaining = 0;
        ca -= c;
        if (ca == 0 && ia < a.counts.size()) {
          ca = a.counts[ia++];
          va = !va;
        }
        remaining += ca;
        cb -= c;
        if (cb == 0 && ib < b.counts.size()) {
          cb = b.counts[ib++];
          vb = !vb;
        }
        remaining += cb;
      }
      if (inter == 0) {
        uni = 1;
      } else if (crowd) {
        uni = rle_area(a);
      }
      o = static_cast<double>(inter) / static_cast<double>(uni);
    }
  }
  return out;
}

}  // namespace gndet::data
