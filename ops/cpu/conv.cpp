// CPU convolution by im2col + GEMM: for float32, our own GEMM (gemm.h) with im2col done while it
// packs its operand (the `_packed` steps below) and the weights packed once per call
// (PackedWeights); for float64 and builds without AVX-512, Eigen over a column buffer.
//
// Per group, a convolution is the product Y_g (C_out/G, P) = W_g (C_out/G, K) * col (K, P) where
// col holds, for every output position, the K = C_in/G * kh * kw input values its kernel sees.
// The output positions of a batch are processed in column tiles, one GEMM per (tile, group). A
// tile's column buffer is bounded (kColumnBudget elements), which bounds its width:
//  - small images (fewer than kWideImage positions: RoI heads' 7x7 and 14x14, small feature maps)
//    are batched, several whole images per tile, so that the GEMM stays wide; inputs and outputs
//    then go through buffers (copies that cost far less than a narrow GEMM would);
//  - otherwise each tile is one image or a piece of one, and the GEMM reads and writes the tensors
//    in place through strided maps (no copy of x, y or dy); a 1x1 / stride-1 / unpadded
//    convolution then even skips im2col, its column matrix is x itself.
//
// Threads: one OpenMP region per kernel call. Eigen runs serially inside it (it never nests a
// region), and its own parallel GEMM, whose threads spin-wait on each other, is never used: that
// collapses as soon as anything else (a data loader) competes for the cores. Instead the team
// splits each (tile, group) step itself:
//   forward          by output columns: each thread im2cols and multiplies its own columns;
//   input gradient   by columns for the GEMM into the shared column buffer, then by input
//                    channel for col2im (channels own disjoint dx planes: no races), or, where
//                    the kernel fits in its stride (1x1 / 2, 2x2 / 2), placing each value once;
//   weight gradient  Eigen: by rows of the column matrix (K), i.e. by columns of dW: each thread
//                    im2cols its rows and owns its dW columns across all tiles; gemm.h: by
//                    output columns like the forward, each thread summing into its own dW
//                    (backward_weight_packed adds them up at the end).
// Grouped convolutions with at least as many groups as threads (ResNeXt) give whole groups to
// threads instead, each with its own buffers and no synchronisation at all.
//
// float32 3x3 / stride-1 convolutions with 16 or more channels each way and enough positions take
// another road, for the forward and both gradients: Winograd F(4x4, 3x3) (conv_winograd.h), 4x
// fewer multiplications. float32 grouped 3x3s with 4-64 channels per group (ResNeXt's) are
// computed directly, without a column matrix (conv_grouped.h).
//
// Gradient conventions: dx and dw are overwritten, never accumulated into.
// With -march=native, GCC 12 warns that its own AVX-512 intrinsics use '__Y' uninitialised where
// Eigen's GEMM kernels are inlined into this file: a known false positive (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <Eigen/Core>
#include <algorithm>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <cstring>
#include <memory>
#include <omp.h>
#include <type_traits>
#include <vector>

#include "ops/conv.h"
#include "ops/conv_geometry.h"
#include "ops/cpu/conv_grouped.h"
#include "ops/cpu/conv_winograd.h"
#include "ops/cpu/gemm.h"
#include "ops/cpu/stride2.h"
#include "ops/kernel_util.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

namespace gemm = cpu::gemm;

template <class T>
using RowMat = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using Outer = Eigen::OuterStride<>;
template <class T>
using MatMap = Eigen::Map<RowMat<T>, 0, Outer>;
template <class T>
using ConstMatMap = Eigen::Map<const RowMat<T>, 0, Outer>;

constexpr int64_t kColumnBudget = int64_t{1} << 21;  // elements of one tile's column buffer (8 MB in float)
constexpr int64_t kMinColumns = 256;  // a tile may exceed the budget to reach this width: narrower GEMMs are slow
constexpr int64_t kWideImage = 512;   // positions from which one image alone makes a wide enough GEMM

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Output positions [p0, p1) of images [n0, n1); a multi-image tile always spans whole images.
struct Tile {
  int64_t n0, n1, p0, p1;
  int64_t span() const { return p1 - p0; }
  int64_t cols() const { return (n1 - n0) * span(); }
  bool single() const { return n1 - n0 == 1; }
};

std::vector<Tile> make_tiles(const ConvGeometry& g) {
  const int64_t P = g.P();
  const int64_t max_cols = std::max(kMinColumns, kColumnBudget / std::max<int64_t>(g.K(), 1));
  std::vector<Tile> tiles;
  if (g.N == 1 || P >= kWideImage || 2 * P > max_cols) {
    const int64_t step = ceil_div(P, ceil_div(P, max_cols));  // equal pieces, none tiny
    for (int64_t n = 0; n < g.N; ++n) {
      for (int64_t p0 = 0; p0 < P; p0 += step) tiles.push_back({n, n + 1, p0, std::min(P, p0 + step)});
    }
  } else {
    const int64_t per = std::clamp<int64_t>(max_cols / P, 1, g.N);
    for (int64_t n0 = 0; n0 < g.N; n0 += per) tiles.push_back({n0, std::min(g.N, n0 + per), 0, P});
  }
  return tiles;
}

int64_t max_tile_cols(const std::vector<Tile>& tiles) {
  int64_t m = 0;
  for (const Tile& t : tiles) m = std::max(m, t.cols());
  return m;
}

// The valid range [lo, hi) of output columns ow whose input column ow*sw + off lies in [0, W).
void valid_columns(const ConvGeometry& g, int64_t off, int64_t* lo, int64_t* hi) {
  *lo = off >= 0 ? 0 : ceil_div(-off, g.sw);
  *hi = off >= g.W ? 0 : std::min(g.W_out, (g.W - 1 - off) / g.sw + 1);
  *lo = std::min(*lo, g.W_out);
  *hi = std::max(*hi, *lo);
}

// The adjoint of stride2.h's deinterleave: row[2 ow + off] += s[ow] for ow from a on, 16 at a
// time while the 32 floats touched stay in the row of W (the odd entries are stored back
// unchanged: masked adds). Returns where it stopped; the caller does the rest.
inline int64_t scatter_add_stride2(const float* s, int64_t a, int64_t b, int64_t W, int64_t off, float* row) {
  int64_t ow = a;
#if defined(__AVX512F__)
  const __m512i spread_lo = _mm512_setr_epi32(0, 16, 1, 16, 2, 16, 3, 16, 4, 16, 5, 16, 6, 16, 7, 16);
  const __m512i spread_hi = _mm512_setr_epi32(8, 16, 9, 16, 10, 16, 11, 16, 12, 16, 13, 16, 14, 16, 15, 16);
  const __m512 zero = _mm512_setzero_ps();
  constexpr __mmask16 kEven = 0x5555;
  for (; ow + 16 <= b && 2 * ow + off + 32 <= W; ow += 16) {
    const __m512 v = _mm512_loadu_ps(s + ow);
    float* r = row + 2 * ow + off;
    const __m512 lo = _mm512_loadu_ps(r), hi = _mm512_loadu_ps(r + 16);
    _mm512_storeu_ps(r, _mm512_mask_add_ps(lo, kEven, lo, _mm512_permutex2var_ps(v, spread_lo, zero)));
    _mm512_storeu_ps(r + 16, _mm512_mask_add_ps(hi, kEven, hi, _mm512_permutex2var_ps(v, spread_hi, zero)));
  }
#else
  (void)s, (void)b, (void)W, (void)off, (void)row;
#endif
  return ow;
}

// One row of the column matrix: for output positions [p0, p1) of one image, the value that kernel
// tap (i, j) reads from the channel plane `src` (zero in the padding).
template <class T>
void im2col_row(const ConvGeometry& g, const T* src, T* dst, int64_t i, int64_t j, int64_t p0, int64_t p1) {
  const int64_t off_h = i * g.dh - g.ph, off_w = j * g.dw - g.pw;
  int64_t lo, hi;
  valid_columns(g, off_w, &lo, &hi);
  for (int64_t p = p0; p < p1;) {
    const int64_t oh = p / g.W_out, ow0 = p % g.W_out;
    const int64_t ow1 = std::min(g.W_out, ow0 + (p1 - p));
    T* d = dst + (p - p0);  // d[k] is the entry of output column ow0 + k
    const int64_t ih = oh * g.sh + off_h;
    if (ih < 0 || ih >= g.H) {
      std::fill(d, d + (ow1 - ow0), T(0));
    } else {
      const int64_t a = std::clamp(lo, ow0, ow1), b = std::clamp(hi, a, ow1);
      std::fill(d, d + (a - ow0), T(0));
      const T* row = src + ih * g.W;
      if (g.sw == 1) {
        if (b > a) std::memcpy(d + (a - ow0), row + (a + off_w), static_cast<size_t>(b - a) * sizeof(T));
      } else {
        int64_t ow = a;
        if constexpr (std::is_same_v<T, float>) {
          if (g.sw == 2 && b > a) {
            cpu::deinterleave_stride2(row + 2 * a + off_w, b - a, g.W - (2 * a + off_w), d + (a - ow0));
            ow = b;
          }
        }
        for (; ow < b; ++ow) d[ow - ow0] = row[ow * g.sw + off_w];
      }
      std::fill(d + (b - ow0), d + (ow1 - ow0), T(0));
    }
    p += ow1 - ow0;
  }
}

// The adjoint of im2col_row: adds each entry of one column-matrix row into the input position it
// was read from.
template <class T>
void col2im_row(const ConvGeometry& g, const T* src, T* plane, int64_t i, int64_t j, int64_t p0, int64_t p1) {
  const int64_t off_h = i * g.dh - g.ph, off_w = j * g.dw - g.pw;
  int64_t lo, hi;
  valid_columns(g, off_w, &lo, &hi);
  for (int64_t p = p0; p < p1;) {
    const int64_t oh = p / g.W_out, ow0 = p % g.W_out;
    const int64_t ow1 = std::min(g.W_out, ow0 + (p1 - p));
    const T* s = src + (p - p0);  // s[k] is the entry of output column ow0 + k
    const int64_t ih = oh * g.sh + off_h;
    if (ih >= 0 && ih < g.H) {
      const int64_t a = std::clamp(lo, ow0, ow1), b = std::clamp(hi, a, ow1);
      T* row = plane + ih * g.W;
      if (g.sw == 1) {
        T* r = row + (a + off_w);
        const T* v = s + (a - ow0);
#pragma omp simd
        for (int64_t k = 0; k < b - a; ++k) r[k] += v[k];
      } else {
        int64_t ow = a;
        if constexpr (std::is_same_v<T, float>) {
          if (g.sw == 2) ow = scatter_add_stride2(s - ow0, a, b, g.W, off_w, row);
        }
        for (; ow < b; ++ow) row[ow * g.sw + off_w] += s[ow - ow0];
      }
    }
    p += ow1 - ow0;
  }
}

// The threads sharing one kernel call, and their shares of the work.
struct Team {
  int index = 0;
  int size = 1;
  std::pair<int64_t, int64_t> share(int64_t n) const { return {n * index / size, n * (index + 1) / size}; }
  void sync() const {
    if (size > 1) {
#pragma omp barrier
    }
  }
};

// This thread's columns of a tile: a range of positions (single-image tile) or of whole images.
Tile share_of(const Tile& t, const Team& team) {
  if (t.single()) {
    const auto [a, b] = team.share(t.span());
    return {t.n0, t.n1, t.p0 + a, t.p0 + b};
  }
  const auto [a, b] = team.share(t.n1 - t.n0);
  return {t.n0 + a, t.n0 + b, t.p0, t.p1};
}
int64_t column_offset(const Tile& t, const Tile& sub) {
  return t.single() ? sub.p0 - t.p0 : (sub.n0 - t.n0) * t.span();
}

// Rows [r0, r1) of the column matrix of group `grp` over sub-tile s; `col` points at s's first
// column and rows are `ld` apart.
template <class T>
void im2col(const ConvGeometry& g, const T* x, const Tile& s, int64_t grp, int64_t r0, int64_t r1, T* col, int64_t ld) {
  const int64_t khw = g.kh * g.kw;
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t c = r / khw, i = (r / g.kw) % g.kh, j = r % g.kw;
    for (int64_t n = s.n0; n < s.n1; ++n) {
      const T* plane = x + (n * g.C_in + grp * g.cin_g() + c) * g.HW();
      im2col_row(g, plane, col + r * ld + (n - s.n0) * s.span(), i, j, s.p0, s.p1);
    }
  }
}

// col2im adds into dx, so dx's rows are cleared first: each tile clears the rows that it is the
// first to reach, in the planes of its images and channels, just before adding into them. (Clearing
// every plane at the first tile sent all of dx out of the caches and had col2im read it back: 34 MB
// for layer2's 3 x 3 / 2 at 800 x 1344.) Tiles run in order of position within an image, so an
// earlier tile of the same image reached the rows up to its last output row's reach; the last tile
// also clears the rows below every output's reach. Every row is cleared exactly once.
template <class T>
void clear_reached_rows(const ConvGeometry& g, const Tile& t, int64_t grp, int64_t c0, int64_t c1, T* dx) {
  const int64_t reach = (g.kh - 1) * g.dh - g.ph + 1;  // output row oh reaches dx rows below oh * sh + reach
  auto end_row = [&](int64_t p_end) {
    return p_end == g.P() ? g.H : std::clamp<int64_t>((p_end - 1) / g.W_out * g.sh + reach, 0, g.H);
  };
  const int64_t y0 = t.p0 == 0 ? 0 : end_row(t.p0), y1 = end_row(t.p1);
  for (int64_t n = t.n0; n < t.n1; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      T* plane = dx + (n * g.C_in + grp * g.cin_g() + c) * g.HW();
      std::fill(plane + y0 * g.W, plane + std::max(y0, y1) * g.W, T(0));
    }
  }
}

// dx planes of channels [c0, c1) of group `grp`, in the tile's images, += col2im(col).
template <class T>
void col2im(const ConvGeometry& g, const T* col, int64_t ld, const Tile& t, int64_t grp, int64_t c0, int64_t c1, T* dx) {
  const int64_t khw = g.kh * g.kw;
  for (int64_t n = t.n0; n < t.n1; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      T* plane = dx + (n * g.C_in + grp * g.cin_g() + c) * g.HW();
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          const T* src = col + (c * khw + i * g.kw + j) * ld + (n - t.n0) * t.span();
          col2im_row(g, src, plane, i, j, t.p0, t.p1);
        }
      }
    }
  }
}

// buf (C_out/G, columns of s, row stride ld) <-> the channels of group `grp` of a (N, C_out, P)
// tensor, for the whole images of a multi-image sub-tile.
template <class T>
void gather_outputs(const ConvGeometry& g, const T* y, const Tile& s, int64_t grp, T* buf, int64_t ld) {
  const int64_t cog = g.cout_g(), P = g.P();
  for (int64_t n = s.n0; n < s.n1; ++n) {
    for (int64_t o = 0; o < cog; ++o) {
      std::memcpy(buf + o * ld + (n - s.n0) * P, y + (n * g.C_out + grp * cog + o) * P, static_cast<size_t>(P) * sizeof(T));
    }
  }
}
template <class T>
void scatter_outputs(const ConvGeometry& g, const T* buf, int64_t ld, const Tile& s, int64_t grp, T* y) {
  const int64_t cog = g.cout_g(), P = g.P();
  for (int64_t n = s.n0; n < s.n1; ++n) {
    for (int64_t o = 0; o < cog; ++o) {
      std::memcpy(y + (n * g.C_out + grp * cog + o) * P, buf + o * ld + (n - s.n0) * P, static_cast<size_t>(P) * sizeof(T));
    }
  }
}

// The (C_out/G, K) weight matrix of group `grp`.
template <class T>
ConstMatMap<T> weight_of(const ConvGeometry& g, const T* w, int64_t grp) {
  return ConstMatMap<T>(w + grp * g.cout_g() * g.K(), g.cout_g(), g.K(), Outer(g.K()));
}
// The (rows, columns of s) block of channels [c0, c0 + rows) of a (N, C, P) tensor, s single-image.
template <class T>
ConstMatMap<T> block_of(const T* t, int64_t C, int64_t P, const Tile& s, int64_t c0, int64_t rows) {
  return ConstMatMap<T>(t + (s.n0 * C + c0) * P + s.p0, rows, s.span(), Outer(P));
}
template <class T>
MatMap<T> block_of(T* t, int64_t C, int64_t P, const Tile& s, int64_t c0, int64_t rows) {
  return MatMap<T>(t + (s.n0 * C + c0) * P + s.p0, rows, s.span(), Outer(P));
}

// Scratch of one team: the column matrix (K x tile columns) and a (C_out/G x tile columns) buffer
// for the outputs or output gradients of multi-image tiles. Rows are `ld` (the widest tile) apart
// for every tile, so that a thread's rows never move between steps.
template <class T>
struct Workspace {
  T* col;
  T* buf;
  int64_t ld;
};

// The float32 steps with gemm.h, where it has its AVX-512 kernel. The column matrix is never
// written whole: the forward's GEMM asks for its rows and the weight gradient's for its columns,
// piece by piece as it packs them, and im2col makes each piece then (in L1), or hands out x itself
// where the piece is a row of x (1x1 convolutions).

// Entries [q0, q1) of row r of tile t's column matrix (column q: image t.n0 + q / span, position
// t.p0 + q % span), written into dst, or a pointer into x where they lie there in a row.
const float* column_matrix_piece(const ConvGeometry& g, const float* x, const Tile& t, int64_t grp, int64_t r, int64_t q0,
                                 int64_t q1, float* dst) {
  const int64_t khw = g.kh * g.kw, c = r / khw, i = (r / g.kw) % g.kh, j = r % g.kw;
  const float* first_plane = x + (t.n0 * g.C_in + grp * g.cin_g() + c) * g.HW();
  if (g.pointwise() && q0 / t.span() == (q1 - 1) / t.span()) {
    return first_plane + (q0 / t.span()) * g.C_in * g.HW() + t.p0 + q0 % t.span();
  }
  for (int64_t q = q0; q < q1;) {
    const int64_t image = q / t.span(), p = t.p0 + q % t.span(), len = std::min(q1 - q, t.span() - q % t.span());
    im2col_row(g, first_plane + image * g.C_in * g.HW(), dst + (q - q0), i, j, p, p + len);
    q += len;
  }
  return dst;
}

// Entries [q0, q1) of channel c's row of a (N, C, P) tensor over tile t's columns: a pointer into
// the tensor within one image, else copied into dst.
const float* tensor_piece(const float* data, int64_t C, int64_t P, const Tile& t, int64_t c, int64_t q0, int64_t q1,
                          float* dst) {
  const float* first = data + (t.n0 * C + c) * P + t.p0;
  if (q0 / t.span() == (q1 - 1) / t.span()) return first + (q0 / t.span()) * C * P + q0 % t.span();
  for (int64_t q = q0; q < q1;) {
    const int64_t len = std::min(q1 - q, t.span() - q % t.span());
    std::memcpy(dst + (q - q0), first + (q / t.span()) * C * P + q % t.span(), sizeof(float) * static_cast<size_t>(len));
    q += len;
  }
  return dst;
}

// A convolution's weights as the GEMM's left operand, each group's packed once per call into the
// micro-kernel's panels (gemm::PackedA) and shared by every tile and thread. Packed inside each
// GEMM instead, every thread packed all of a group's weights again for every tile of its image:
// on layer4's 3 x 3 / 2 at 800 x 1344, 9.4 MB six times per call, and for the input gradient
// (W^T) by a gather of 32 bytes from each of 4608 rows 18 KB apart per panel.
class PackedWeights {
 public:
  // a_of(grp): group grp's M x K left operand.
  template <class AOf>
  PackedWeights(int64_t groups, int64_t M, int64_t K, AOf a_of) : per_group_(gemm::packed_a_size(M, K)) {
    std::vector<float>& buffer = storage();
    if (buffer.size() < static_cast<size_t>(groups * per_group_)) buffer.resize(static_cast<size_t>(groups * per_group_));
    data_ = buffer.data();
    const int64_t panels = ceil_div(M, gemm::kMr);
#pragma omp parallel for schedule(static) if (groups * per_group_ >= cpu::kParallelGrain)
    for (int64_t q = 0; q < groups * panels; ++q) {
      gemm::pack_a_panel(a_of(q / panels), M, K, q % panels, data_ + (q / panels) * per_group_);
    }
  }
  gemm::PackedA group(int64_t grp) const { return {data_ + grp * per_group_}; }

 private:
  // Grows to the largest weights the calling thread has packed and stays: no allocation, and no
  // page faults, per call.
  static std::vector<float>& storage() {
    thread_local std::vector<float> buffer;
    return buffer;
  }
  int64_t per_group_;
  float* data_;
};

void forward_step_packed(const ConvGeometry& g, const Tile& t, int64_t grp, const Team& team, const Workspace<float>& ws,
                         float* y, const float* x, const PackedWeights& w, const float* b) {
  const Tile s = share_of(t, team);
  const int64_t K = g.K(), cog = g.cout_g();
  if (s.cols() > 0) {
    const gemm::PackedA Wg = w.group(grp);
    const float* bias = b != nullptr ? b + grp * cog : nullptr;
    auto row = [&](int64_t r, int64_t q0, int64_t n, float* scratch) { return column_matrix_piece(g, x, s, grp, r, q0, q0 + n, scratch); };
    const gemm::BSource Col{gemm::BSource::Kind::kRows, row};
    float* y_tile = y + (s.n0 * g.C_out + grp * cog) * g.P() + s.p0;
    if (s.single() && g.pointwise()) {  // the column matrix is x's rows: the GEMM may read them in place
      gemm::sgemm(cog, s.cols(), K, Wg, gemm::Strided{x + (s.n0 * g.C_in + grp * g.cin_g()) * g.HW() + s.p0, g.HW(), 1}, y_tile, g.P(),
                  false, bias);
    } else if (s.single()) {
      gemm::sgemm(cog, s.cols(), K, Wg, Col, y_tile, g.P(), false, bias);
    } else {
      float* out = ws.buf + column_offset(t, s);
      gemm::sgemm(cog, s.cols(), K, Wg, Col, out, ws.ld, false, bias);
      scatter_outputs(g, out, ws.ld, s, grp, y);
    }
  }
  if (!t.single()) team.sync();  // shares change between tiles: none may overwrite a buffer another still reads
}

// A kernel within its stride and no padding (the mask heads' 2 x 2 / 2 transposed convolution, seen
// from the convolution it is the gradient of; the input gradient of a 1 x 1 / 2 downsample): each dx
// element gets at most one value of the column gradient. So dx is written once, those values and
// zeros between them, where col2im would first clear all of dx and then add into it (on layer2's
// 1 x 1 / 2 at 800 x 1344, a 69 MB dx written twice and a quarter of it read back).
bool kernel_within_stride(const ConvGeometry& g) {
  return g.kh <= g.sh && g.kw <= g.sw && g.ph == 0 && g.pw == 0 && g.dh == 1 && g.dw == 1;
}

// The columns [ow0 sw, x1) of one dx row, owned by output columns [ow0, ow1) of a kernel row:
// output column ow's values go to ow * sw + j for the kernel's columns j < kw (src[j * ld + ow]),
// zeros to the rest of its sw columns and to the columns after the last output's (x1 may also
// stop short of ow1 * sw, at the map's edge).
void place_row(const ConvGeometry& g, const float* src, int64_t ld, float* out, int64_t ow0, int64_t ow1, int64_t x1) {
  int64_t ow = ow0;
  if (g.sw == 1) {  // 1 x 1 over batched small images: a copy
    std::copy(src + ow0, src + ow1, out + ow0);
    ow = ow1;
  }
#if defined(__AVX512F__)
  if (g.sw == 2) {  // interleave 16 outputs of j = 0 with those of j = 1, or with zeros for a 1-wide kernel
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi = _mm512_add_epi32(lo, _mm512_set1_epi32(8));
    for (; ow + 16 <= ow1 && 2 * ow + 32 <= x1; ow += 16) {
      const __m512 a = _mm512_loadu_ps(src + ow), b = g.kw == 2 ? _mm512_loadu_ps(src + ld + ow) : _mm512_setzero_ps();
      _mm512_storeu_ps(out + 2 * ow, _mm512_permutex2var_ps(a, lo, b));
      _mm512_storeu_ps(out + 2 * ow + 16, _mm512_permutex2var_ps(a, hi, b));
    }
  }
#endif
  for (; ow < ow1; ++ow) {
    for (int64_t j = 0; j < g.sw && ow * g.sw + j < x1; ++j) out[ow * g.sw + j] = j < g.kw ? src[j * ld + ow] : 0.0f;
  }
  for (int64_t x = ow1 * g.sw; x < x1; ++x) out[x] = 0.0f;
}

// dx planes of channels [c0, c1) of group `grp`, in the tile's images, = the column gradient
// placed (kernel_within_stride): row (c, i, j) of col, output column ow goes to (oh sh + i, ow sw + j).
// Output position (oh, ow) owns dx's rows [oh sh, oh sh + sh) and columns [ow sw, ow sw + sw), the
// last row and column of outputs also what lies beyond them: every dx element is written by
// exactly one position, so the tiles and the threads' channels never overlap.
void place_columns(const ConvGeometry& g, const float* col, int64_t ld, const Tile& t, int64_t grp, int64_t c0, int64_t c1,
                   float* dx) {
  const int64_t khw = g.kh * g.kw;
  for (int64_t n = t.n0; n < t.n1; ++n) {
    for (int64_t c = c0; c < c1; ++c) {
      float* plane = dx + (n * g.C_in + grp * g.cin_g() + c) * g.HW();
      const float* rows = col + c * khw * ld + (n - t.n0) * t.span();
      for (int64_t p = t.p0; p < t.p1;) {
        const int64_t oh = p / g.W_out, ow0 = p % g.W_out, ow1 = std::min(g.W_out, ow0 + (t.p1 - p));
        const int64_t y1 = oh + 1 == g.H_out ? g.H : std::min(g.H, (oh + 1) * g.sh);
        const int64_t x1 = ow1 == g.W_out ? g.W : std::min(g.W, ow1 * g.sw);
        for (int64_t y = oh * g.sh; y < y1; ++y) {
          const int64_t i = y - oh * g.sh;
          float* out = plane + y * g.W;
          if (i >= g.kh) {
            std::fill(out + ow0 * g.sw, out + x1, 0.0f);
          } else {
            place_row(g, rows + i * g.kw * ld + (p - t.p0) - ow0, ld, out, ow0, ow1, x1);
          }
        }
        p += ow1 - ow0;
      }
    }
  }
}

void backward_input_step_packed(const ConvGeometry& g, const Tile& t, int64_t grp, const Team& team,
                                const Workspace<float>& ws, float* dx, const float* dy, const PackedWeights& wt) {
  const int64_t K = g.K(), cog = g.cout_g(), cig = g.cin_g();
  const Tile s = share_of(t, team);
  const gemm::PackedA WgT = wt.group(grp);
  auto dy_row = [&](int64_t o, int64_t q0, int64_t n, float* scratch) {
    return tensor_piece(dy, g.C_out, g.P(), s, grp * cog + o, q0, q0 + n, scratch);
  };
  const gemm::BSource DY{gemm::BSource::Kind::kRows, dy_row};
  if (t.single() && g.pointwise()) {  // each dx element is written exactly once: no zeroing, no col2im
    // dy's rows in memory: the GEMM asks for the next block's lines while it computes
    const gemm::Strided dy_rows{dy + (s.n0 * g.C_out + grp * cog) * g.P() + s.p0, g.P(), 1};
    if (s.cols() > 0) gemm::sgemm(cig, s.cols(), cog, WgT, dy_rows, dx + (s.n0 * g.C_in + grp * cig) * g.HW() + s.p0, g.HW(), false);
    return;
  }
  const auto [c0, c1] = team.share(cig);
  if (s.cols() > 0) gemm::sgemm(K, s.cols(), cog, WgT, DY, ws.col + column_offset(t, s), ws.ld, false);
  team.sync();  // the tile's column gradient is complete
  if (kernel_within_stride(g)) {
    place_columns(g, ws.col, ws.ld, t, grp, c0, c1, dx);
  } else {
    clear_reached_rows(g, t, grp, c0, c1, dx);
    col2im(g, ws.col, ws.ld, t, grp, c0, c1, dx);
  }
  team.sync();  // before the next step overwrites the column buffer
}

// The weight gradient splits each tile's columns (positions) between the threads, like the
// forward: each thread reads only its share of dy and x, and its GEMM has all of dW's columns (a
// split of dW's columns instead gave 32-column GEMMs for a 1x1 from 64 channels, and every thread
// packed all of dy). Thread 0 sums into dw itself, the others into their own copies of dw
// (`Partials`), added into dw once at the end.
struct Partials {
  std::vector<float*> target;  // per thread: where its sums go (thread 0: dw)
  std::vector<char> written;   // per thread and group: whether its target holds sums yet
  int64_t groups;
};

void backward_weight_step_packed(const ConvGeometry& g, const Tile& t, int64_t grp, const Team& team,
                                 const Workspace<float>& ws, Partials& partials, const float* dy, const float* x) {
  const int64_t K = g.K(), cog = g.cout_g();
  const Tile s = share_of(t, team);
  if (s.cols() > 0) {
    gemm::Strided DY{dy + (s.n0 * g.C_out + grp * cog) * g.P() + s.p0, g.P(), 1};
    if (!s.single()) {  // the GEMM's left operand is one strided matrix: gather the images' rows
      float* mine = ws.buf + column_offset(t, s);
      gather_outputs(g, dy, s, grp, mine, ws.ld);
      DY = {mine, ws.ld, 1};
    }
    auto column = [&](int64_t r, int64_t q0, int64_t kc, float* scratch) {
      return column_matrix_piece(g, x, s, grp, r, q0, q0 + kc, scratch);
    };
    char& written = partials.written[team.index * partials.groups + grp];
    gemm::sgemm(cog, K, s.cols(), DY, gemm::BSource{gemm::BSource::Kind::kColumns, column},
                partials.target[team.index] + grp * cog * K, K, /*accumulate=*/written != 0);
    written = 1;
  }
  if (!t.single()) team.sync();  // shares change between tiles: none may overwrite a buffer another still reads
}

// One (tile, group) step of each kernel, run by every thread of `team`.
template <class T>
void forward_step(const ConvGeometry& g, const Tile& t, int64_t grp, const Team& team, const Workspace<T>& ws, T* y,
                  const T* x, const T* w, const T* b) {
  const Tile s = share_of(t, team);
  const int64_t K = g.K(), cog = g.cout_g(), cig = g.cin_g(), ld = ws.ld, off = column_offset(t, s);
  const ConstMatMap<T> Wg = weight_of(g, w, grp);
  auto add_bias = [&](auto& Y) {
    if (b != nullptr) Y.colwise() += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(b + grp * cog, cog);
  };
  if (t.single() && g.pointwise()) {  // x and y in place: no buffer
    if (s.cols() == 0) return;
    MatMap<T> Y = block_of(y, g.C_out, g.P(), s, grp * cog, cog);
    Y.noalias() = Wg * block_of(x, g.C_in, g.HW(), s, grp * cig, cig);
    add_bias(Y);
    return;
  }
  if (s.cols() > 0) {
    im2col(g, x, s, grp, 0, K, ws.col + off, ld);
    const ConstMatMap<T> Col(ws.col + off, K, s.cols(), Outer(ld));
    if (t.single()) {
      MatMap<T> Y = block_of(y, g.C_out, g.P(), s, grp * cog, cog);
      Y.noalias() = Wg * Col;
      add_bias(Y);
    } else {
      MatMap<T> O(ws.buf + off, cog, s.cols(), Outer(ld));
      O.noalias() = Wg * Col;
      add_bias(O);
      scatter_outputs(g, ws.buf + off, ld, s, grp, y);
    }
  }
  team.sync();  // shares change between tiles: no thread may overwrite columns another still reads
}

template <class T>
void backward_input_step(const ConvGeometry& g, const Tile& t, int64_t grp, const Team& team,
                         const Workspace<T>& ws, T* dx, const T* dy, const T* w) {
  const int64_t K = g.K(), cog = g.cout_g(), cig = g.cin_g(), ld = ws.ld;
  const Tile s = share_of(t, team);
  const ConstMatMap<T> Wg = weight_of(g, w, grp);
  const auto WgT = Wg.transpose();
  if (t.single() && g.pointwise()) {  // each dx element is written exactly once: no zeroing, no col2im
    if (s.cols() > 0) {
      block_of(dx, g.C_in, g.HW(), s, grp * cig, cig).noalias() = WgT * block_of(dy, g.C_out, g.P(), s, grp * cog, cog);
    }
    return;
  }
  const auto [c0, c1] = team.share(cig);
  if (s.cols() > 0) {
    const int64_t off = column_offset(t, s);
    MatMap<T> D(ws.col + off, K, s.cols(), Outer(ld));
    if (t.single()) {
      D.noalias() = WgT * block_of(dy, g.C_out, g.P(), s, grp * cog, cog);
    } else {
      gather_outputs(g, dy, s, grp, ws.buf + off, ld);
      D.noalias() = WgT * ConstMatMap<T>(ws.buf + off, cog, s.cols(), Outer(ld));
    }
  }
  team.sync();  // the tile's column gradient is complete
  clear_reached_rows(g, t, grp, c0, c1, dx);
  col2im(g, ws.col, ld, t, grp, c0, c1, dx);
  team.sync();  // before the next step overwrites the column buffer
}

template <class T>
void backward_weight_step(const ConvGeometry& g, const Tile& t, int64_t grp, bool first, const Team& team,
                          const Workspace<T>& ws, T* dw, const T* dy, const T* x) {
  const int64_t K = g.K(), cog = g.cout_g(), cig = g.cin_g(), ld = ws.ld;
  if (!t.single()) {
    const Tile s = share_of(t, team);
    gather_outputs(g, dy, s, grp, ws.buf + column_offset(t, s), ld);
    team.sync();  // every thread reads all of the tile's output gradient
  }
  const auto [r0, r1] = team.share(K);
  if (r1 > r0) {
    MatMap<T> dW(dw + grp * cog * K + r0, cog, r1 - r0, Outer(K));
    auto accumulate = [&](const auto& DY, const auto& X) {
      if (first) {
        dW.noalias() = DY * X.transpose();
      } else {
        dW.noalias() += DY * X.transpose();
      }
    };
    if (t.single()) {
      const ConstMatMap<T> DY = block_of(dy, g.C_out, g.P(), t, grp * cog, cog);
      if (g.pointwise()) {
        accumulate(DY, block_of(x, g.C_in, g.HW(), t, grp * cig + r0, r1 - r0));
      } else {
        im2col(g, x, t, grp, r0, r1, ws.col, ld);
        accumulate(DY, ConstMatMap<T>(ws.col + r0 * ld, r1 - r0, t.cols(), Outer(ld)));
      }
    } else {
      im2col(g, x, t, grp, r0, r1, ws.col, ld);
      accumulate(ConstMatMap<T>(ws.buf, cog, t.cols(), Outer(ld)),
                 ConstMatMap<T>(ws.col + r0 * ld, r1 - r0, t.cols(), Outer(ld)));
    }
  }
  if (!t.single()) team.sync();  // before the next gather overwrites the buffer
}

// Runs step(tile, group, first_tile_of_group, team, workspace) over every tile and group.
// Below kParallelFlops the call runs on one thread. The threshold is Eigen's own for a second
// thread (1e5 multiply-adds per GEMM): any GEMM that Eigen would parallelise runs inside our
// active region, where Eigen stays serial.
template <class T, class Step>
void run_steps(const ConvGeometry& g, Step&& step) {
  constexpr double kParallelFlops = 2e5;
  const std::vector<Tile> tiles = make_tiles(g);
  const int64_t cols = max_tile_cols(tiles);
  const int64_t ws_size = (g.K() + g.cout_g()) * cols;
  const int threads = omp_get_max_threads();
  const double flops = 2.0 * static_cast<double>(g.N * g.P()) * static_cast<double>(g.C_out * g.K());
  const bool parallel = threads > 1 && flops >= kParallelFlops;
  if (parallel && g.groups >= threads) {
    auto scratch = std::unique_ptr<T[]>(new T[static_cast<size_t>(threads * ws_size)]);  // uninitialised on purpose
#pragma omp parallel for schedule(dynamic)
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      T* mine = scratch.get() + omp_get_thread_num() * ws_size;
      const Workspace<T> ws{mine, mine + g.K() * cols, cols};
      for (size_t ti = 0; ti < tiles.size(); ++ti) step(tiles[ti], grp, ti == 0, Team{}, ws);
    }
    return;
  }
  auto scratch = std::unique_ptr<T[]>(new T[static_cast<size_t>(ws_size)]);
  const Workspace<T> ws{scratch.get(), scratch.get() + g.K() * cols, cols};
#pragma omp parallel if (parallel)
  {
    const Team team{omp_get_thread_num(), omp_get_num_threads()};
    for (size_t ti = 0; ti < tiles.size(); ++ti) {
      for (int64_t grp = 0; grp < g.groups; ++grp) step(tiles[ti], grp, ti == 0, team, ws);
    }
  }
}

void backward_weight_packed(const ConvGeometry& g, float* dw, const float* dy, const float* x) {
  const int threads = omp_get_max_threads();
  const int64_t size = g.C_out * g.K(), block = g.cout_g() * g.K();
  // Uninitialised on purpose: a copy is read only where its thread has written it.
  std::unique_ptr<float[]> copies(threads > 1 ? new float[static_cast<size_t>((threads - 1) * size)] : nullptr);
  Partials partials{{dw}, std::vector<char>(static_cast<size_t>(threads * g.groups), 0), g.groups};
  for (int i = 1; i < threads; ++i) partials.target.push_back(copies.get() + (i - 1) * size);
  run_steps<float>(g, [&](const Tile& t, int64_t grp, bool, const Team& team, const Workspace<float>& ws) {
    backward_weight_step_packed(g, t, grp, team, ws, partials, dy, x);
  });
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    float* out = dw + grp * block;
    if (!partials.written[grp]) std::fill(out, out + block, 0.0f);  // thread 0 had no columns of this group
    for (int i = 1; i < threads; ++i) {
      if (!partials.written[i * g.groups + grp]) continue;
      const float* in = partials.target[i] + grp * block;
#pragma omp parallel for simd schedule(static) if (block >= cpu::kParallelGrain)
      for (int64_t e = 0; e < block; ++e) out[e] += in[e];
    }
  }
}

void conv2d_forward_cpu(const Tensor& y, const Tensor& x, const Tensor& w, const Tensor& b, Conv2dParams p) {
  const ConvGeometry g = conv_geometry(x, y, w, p);
  dispatch_floating(x.dtype(), "conv2d", [&]<class T>() {
    if constexpr (std::is_same_v<T, float>) {
      if (winograd::applies(g)) return winograd::conv2d_forward(g, in_ptr<T>(x), in_ptr<T>(w), in_ptr<T>(b), out_ptr<T>(y));
      if (grouped::applies(g)) return grouped::conv2d_forward(g, in_ptr<T>(x), in_ptr<T>(w), in_ptr<T>(b), out_ptr<T>(y));
      if (gemm::available()) {
        const int64_t K = g.K(), cog = g.cout_g();
        const float* w_ = in_ptr<T>(w);
        const PackedWeights wg(g.groups, cog, K, [&](int64_t grp) { return gemm::Strided{w_ + grp * cog * K, K, 1}; });
        return run_steps<T>(g, [&](const Tile& t, int64_t grp, bool, const Team& team, const Workspace<T>& ws) {
          forward_step_packed(g, t, grp, team, ws, out_ptr<T>(y), in_ptr<T>(x), wg, in_ptr<T>(b));
        });
      }
    }
    run_steps<T>(g, [&](const Tile& t, int64_t grp, bool, const Team& team, const Workspace<T>& ws) {
      forward_step(g, t, grp, team, ws, out_ptr<T>(y), in_ptr<T>(x), in_ptr<T>(w), in_ptr<T>(b));
    });
  });
}

void conv2d_backward_input_cpu(const Tensor& dx, const Tensor& dy, const Tensor& w, Conv2dParams p) {
  const ConvGeometry g = conv_geometry(dx, dy, w, p);
  dispatch_floating(dx.dtype(), "conv2d_backward_input", [&]<class T>() {
    if constexpr (std::is_same_v<T, float>) {
      if (winograd::applies(g)) return winograd::conv2d_backward_input(g, in_ptr<T>(dy), in_ptr<T>(w), out_ptr<T>(dx));
      if (grouped::applies(g)) return grouped::conv2d_backward_input(g, in_ptr<T>(dy), in_ptr<T>(w), out_ptr<T>(dx));
      if (gemm::available()) {  // the GEMM's left operand is W_g^T: K x C_out/G
        const int64_t K = g.K(), cog = g.cout_g();
        const float* w_ = in_ptr<T>(w);
        const PackedWeights wt(g.groups, K, cog, [&](int64_t grp) { return gemm::Strided{w_ + grp * cog * K, 1, K}; });
        return run_steps<T>(g, [&](const Tile& t, int64_t grp, bool, const Team& team, const Workspace<T>& ws) {
          backward_input_step_packed(g, t, grp, team, ws, out_ptr<T>(dx), in_ptr<T>(dy), wt);
        });
      }
    }
    run_steps<T>(g, [&](const Tile& t, int64_t grp, bool, const Team& team, const Workspace<T>& ws) {
      backward_input_step(g, t, grp, team, ws, out_ptr<T>(dx), in_ptr<T>(dy), in_ptr<T>(w));
    });
  });
}

void conv2d_backward_weight_cpu(const Tensor& dw, const Tensor& dy, const Tensor& x, Conv2dParams p) {
  const ConvGeometry g = conv_geometry(x, dy, dw, p);
  dispatch_floating(dw.dtype(), "conv2d_backward_weight", [&]<class T>() {
    if constexpr (std::is_same_v<T, float>) {
      if (winograd::applies_to_weight_gradient(g)) return winograd::conv2d_backward_weight(g, in_ptr<T>(dy), in_ptr<T>(x), out_ptr<T>(dw));
      if (grouped::applies_to_weight_gradient(g)) return grouped::conv2d_backward_weight(g, in_ptr<T>(dy), in_ptr<T>(x), out_ptr<T>(dw));
      if (gemm::available()) return backward_weight_packed(g, out_ptr<T>(dw), in_ptr<T>(dy), in_ptr<T>(x));
    }
    run_steps<T>(g, [&](const Tile& t, int64_t grp, bool first, const Team& team, const Workspace<T>& ws) {
      backward_weight_step(g, t, grp, first, team, ws, out_ptr<T>(dw), in_ptr<T>(dy), in_ptr<T>(x));
    });
  });
}

void channel_sum_cpu(const Tensor& db, const Tensor& dy) {
  const int64_t N = dy.size(0), C = dy.size(1), S = dy.numel() / std::max<int64_t>(N * C, 1);
  dispatch_floating(dy.dtype(), "channel_sum", [&]<class T>() {
    const T* in = in_ptr<T>(dy);
    T* out = out_ptr<T>(db);
#pragma omp parallel for schedule(static) if (dy.numel() >= cpu::kParallelGrain)
    for (int64_t c = 0; c < C; ++c) {
      double s = 0.0;
      for (int64_t n = 0; n < N; ++n) {
        const T* row = in + (n * C + c) * S;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < S; ++i) s += row[i];
      }
      out[c] = static_cast<T>(s);
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(conv2d_forward_kernel, CPU, conv2d_forward_cpu);
GNDET_REGISTER_KERNEL(conv2d_backward_input_kernel, CPU, conv2d_backward_input_cpu);
GNDET_REGISTER_KERNEL(conv2d_backward_weight_kernel, CPU, conv2d_backward_weight_cpu);
GNDET_REGISTER_KERNEL(channel_sum_kernel, CPU, channel_sum_cpu);

}  // namespace gndet
