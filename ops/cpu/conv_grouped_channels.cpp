// The grouped 3x3 convolutions with vectors along the channels: see conv_grouped_channels.h for
// what and why, and each section below for how.
#include "ops/cpu/conv_grouped_channels.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <utility>
#include <vector>

#include "ops/cpu/conv_grouped_simd.h"

namespace gndet::grouped::channels {
namespace {

using namespace simd;

// in[i]'s 128-bit block j to out[j]'s block i (i, j < 4): a 4 x 4 transposition of blocks, 8
// shuffles. The zero-masking forms with every lane kept: the plain ones' undefined merge source
// makes GCC 12 warn (maybe-uninitialized).
__attribute__((always_inline)) inline void transpose_blocks(const __m512 (&in)[4], __m512 (&out)[4]) {
  constexpr __mmask16 all = 0xFFFF;
  const __m512 even01 = _mm512_maskz_shuffle_f32x4(all, in[0], in[1], _MM_SHUFFLE(2, 0, 2, 0));
  const __m512 odd01 = _mm512_maskz_shuffle_f32x4(all, in[0], in[1], _MM_SHUFFLE(3, 1, 3, 1));
  const __m512 even23 = _mm512_maskz_shuffle_f32x4(all, in[2], in[3], _MM_SHUFFLE(2, 0, 2, 0));
  const __m512 odd23 = _mm512_maskz_shuffle_f32x4(all, in[2], in[3], _MM_SHUFFLE(3, 1, 3, 1));
  out[0] = _mm512_maskz_shuffle_f32x4(all, even01, even23, _MM_SHUFFLE(2, 0, 2, 0));
  out[2] = _mm512_maskz_shuffle_f32x4(all, even01, even23, _MM_SHUFFLE(3, 1, 3, 1));
  out[1] = _mm512_maskz_shuffle_f32x4(all, odd01, odd23, _MM_SHUFFLE(2, 0, 2, 0));
  out[3] = _mm512_maskz_shuffle_f32x4(all, odd01, odd23, _MM_SHUFFLE(3, 1, 3, 1));
}

// a[k] = row k of a 16 x 16 block, transposed in place (a[k] = column k): rows paired by columns
// (unpack ps), then by pairs of columns (unpack pd), then 128-bit blocks gathered across quads of
// rows (two shuffle_f32x4 steps): 64 shuffles. The zero-masking forms with every lane kept: the
// plain ones' undefined merge source makes GCC 12 warn (maybe-uninitialized).
__attribute__((always_inline)) inline void transpose16(__m512 (&a)[kLanes]) {
  constexpr __mmask16 all = 0xFFFF;
  constexpr __mmask8 all_pd = 0xFF;
  __m512 b[kLanes];
  for (int i = 0; i < kLanes; i += 2) {
    b[i] = _mm512_maskz_unpacklo_ps(all, a[i], a[i + 1]), b[i + 1] = _mm512_maskz_unpackhi_ps(all, a[i], a[i + 1]);
  }
  // a[q + m] (q = 4 j): rows 4 j .. 4 j + 3 at column 4 L + m in 128-bit block L.
  for (int q = 0; q < kLanes; q += 4) {
    const __m512d t0 = _mm512_castps_pd(b[q]), t1 = _mm512_castps_pd(b[q + 1]);
    const __m512d t2 = _mm512_castps_pd(b[q + 2]), t3 = _mm512_castps_pd(b[q + 3]);
    a[q] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all_pd, t0, t2));
    a[q + 1] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all_pd, t0, t2));
    a[q + 2] = _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(all_pd, t1, t3));
    a[q + 3] = _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(all_pd, t1, t3));
  }
  // Then 128-bit blocks gathered across quads of rows: row 4 j + m's block from a[4 i + m]'s block j.
  for (int m = 0; m < 4; ++m) {
    const __m512 in[4] = {a[m], a[4 + m], a[8 + m], a[12 + m]};
    __m512 out[4];
    transpose_blocks(in, out);
    for (int j = 0; j < 4; ++j) b[4 * j + m] = out[j];
  }
  for (int k = 0; k < kLanes; ++k) a[k] = b[k];
}

// One broadcast source value (or pair) times kernel column kx's weights into acc[q_kx], for each
// q_kx >= 0 (the blocks' taps, found at compile time).
template <int q0, int q1, int q2, int N>
__attribute__((always_inline)) inline void fan_out(const __m512 (&w)[3], __m512 xv, __m512 (&acc)[N]) {
  if constexpr (q0 >= 0) acc[q0] = _mm512_fmadd_ps(w[0], xv, acc[q0]);
  if constexpr (q1 >= 0) acc[q1] = _mm512_fmadd_ps(w[1], xv, acc[q1]);
  if constexpr (q2 >= 0) acc[q2] = _mm512_fmadd_ps(w[2], xv, acc[q2]);
}

// ---- The weight gradient ----
//
// A block keeps 16 O output channels x CI input channels x kernel columns 0-2 of one kernel row
// (O = 1 or 2 vectors of output channels, CI = 4 / O: 12 sums) while it sweeps a band's dy rows,
// J positions at a time (J = 4 / O): per step J O loads of dy (transposed: its channels side by
// side) and 3 J O CI multiply-adds, each x value that the step's taps read (column S j + kx - 1
// of an x row) broadcast once from memory for all of them. Standalone, best of 30, 4 alternated
// rounds (2026-12-07), one position at a time (24 sums of 8 / O input channels) against the
// per-position kernels: layer3's 3 x 3 / 2 189 -> 254, layer4's 184 -> 267, layer3's 3 x 3
// 230 -> 273, layer4's 218 -> 274 GFLOP/s (Sapphire Rapids). J positions at a time: see
// weight_block.

// dy rows [y0, y1) of cog channels (ds floats apart, W_out columns), transposed: element (r, j, o)
// at out[((r - y0) * W_out + j) * cog + o]. Each 16 x 16 tile asks for the same tile `ahead`
// floats on (the next band's; 0: nothing).
void transpose_dy_rows(const float* dy, int64_t ds, int64_t W_out, int64_t y0, int64_t y1, int64_t cog, float* out,
                       int64_t ahead) {
  for (int64_t r = y0; r < y1; ++r) {
    for (int64_t j0 = 0; j0 < W_out; j0 += kLanes) {
      const int64_t n = std::min<int64_t>(kLanes, W_out - j0);
      const __mmask16 keep = lanes_mask(n);
      for (int64_t o0 = 0; o0 < cog; o0 += kLanes) {
        const float* s = dy + o0 * ds + r * W_out + j0;
        __m512 a[kLanes];
        for (int k = 0; k < kLanes; ++k) a[k] = _mm512_maskz_loadu_ps(keep, s + k * ds);
        if (ahead != 0) {
          for (int k = 0; k < kLanes; ++k) _mm_prefetch(reinterpret_cast<const char*>(s + k * ds + ahead), _MM_HINT_T1);
        }
        transpose16(a);
        float* d = out + ((r - y0) * W_out + j0) * cog + o0;
        for (int64_t t = 0; t < n; ++t) _mm512_store_ps(d + t * cog, a[t]);
      }
    }
  }
}

// One position: O vectors of dy (from d) times x at kernel columns [kx0, kx1) of CI input
// channels (xp[c][col + kx]).
template <int O, int CI, int kx0, int kx1>
__attribute__((always_inline)) inline void weight_step(const float* d, const float* const (&xp)[CI], int64_t col,
                                                       __m512 (&acc)[O][CI][3]) {
  __m512 dv[O];
  for (int o = 0; o < O; ++o) dv[o] = _mm512_load_ps(d + kLanes * o);
  for (int c = 0; c < CI; ++c) {
    for (int kx = kx0; kx < kx1; ++kx) {
      const __m512 xv = _mm512_set1_ps(xp[c][col + kx]);
      for (int o = 0; o < O; ++o) acc[o][c][kx] = _mm512_fmadd_ps(dv[o], xv, acc[o][c][kx]);
    }
  }
}

// J positions from the one whose kernel column 0 reads column col of xp[c] (dy from d, ds floats
// per position), all 3 kernel columns: each x column broadcast once for every position and kernel
// column that reads it (at stride 1 J + 2 broadcasts per 3 J O multiply-adds and input channel,
// at stride 2 2 J + 1). Each sum takes its positions in the same order as one at a time. The
// loops are unrolled on request: GCC left the stride-2 step rolled, its sums in memory (0.23-0.74x).
template <int O, int CI, int J, int S>
__attribute__((always_inline)) inline void weight_steps(const float* d, int64_t ds, const float* const (&xp)[CI],
                                                        int64_t col, __m512 (&acc)[O][CI][3]) {
  __m512 dv[J][O];
  _Pragma("GCC unroll 16") for (int q = 0; q < J; ++q) {
    _Pragma("GCC unroll 16") for (int o = 0; o < O; ++o) dv[q][o] = _mm512_load_ps(d + q * ds + kLanes * o);
  }
  _Pragma("GCC unroll 16") for (int c = 0; c < CI; ++c) {
    _Pragma("GCC unroll 16") for (int m = 0; m < S * (J - 1) + 3; ++m) {
      const __m512 xv = _mm512_set1_ps(xp[c][col + m]);
      _Pragma("GCC unroll 16") for (int q = 0; q < J; ++q) {
        const int kx = m - S * q;
        if (kx < 0 || kx > 2) continue;
        _Pragma("GCC unroll 16") for (int o = 0; o < O; ++o) {
          acc[o][c][kx] = _mm512_fmadd_ps(dv[q][o], xv, acc[o][c][kx]);
        }
      }
    }
  }
}

// The O x CI x 3 sums of a block: dy transposed from d (ds floats per position), x from the x row of
// the block's first dy row of its first input channel (channels cs apart, rows xrs apart), over
// `rows` dy rows of `cols` positions; added in double to sums[c * sc + kx * so + 16 o + l].
// Position 0 has no kernel column 0 (the padding), and with `short_last` the last position no
// kernel column 2 (it would read column W). With `ask`, each row asks for the x row after it (the
// next dy row's, or the next band's first), a line per 16 columns it moves on.
// The positions between the first and last go J at a time (weight_steps): one at a time each x
// value was broadcast for O multiply-adds, and on Ice Lake a broadcast from memory issues at one
// per cycle, so with O = 1 (layer3) that alone held the block to half the FMA rate. Standalone on
// the Ice Lake VM (2026-12-08, medians of 5 alternated rounds): layer3's 3 x 3 160 -> 272 GFLOP/s,
// its 3 x 3 / 2 148 -> 168; 8 input channels and J = 2 instead: 162 / 156 (24 sums, 2 dy vectors
// and a broadcast spill), 4 and J = 8: 268 / 151.
template <int O, int CI, int J, int S>
__attribute__((noinline)) void weight_block(const float* d, int64_t ds, const float* x, int64_t cs, int64_t xrs,
                                            int64_t rows, int64_t cols, bool short_last, double* sums, int64_t sc,
                                            int64_t so, bool ask) {
  constexpr int kLineSteps = kLanes / S;  // positions per cache line of x
  static_assert(kLineSteps % J == 0, "the steps of J from position 1 meet every line's first");
  __m512 acc[O][CI][3];
  for (int o = 0; o < O; ++o) {
    for (int c = 0; c < CI; ++c) {
      for (int kx = 0; kx < 3; ++kx) acc[o][c][kx] = _mm512_setzero_ps();
    }
  }
  const int64_t full_end = short_last ? cols - 1 : cols;
  for (int64_t r = 0; r < rows; ++r) {
    const float* xp[CI];
    for (int c = 0; c < CI; ++c) xp[c] = x + c * cs + r * xrs;
    if (cols == 1 && short_last) {
      weight_step<O, CI, 1, 2>(d, xp, -1, acc);
    } else {
      weight_step<O, CI, 1, 3>(d, xp, -1, acc);
    }
    d += ds;
    auto ask_next_row = [&](int64_t j) {
      if (ask && j % kLineSteps == 1) {
        for (int c = 0; c < CI; ++c) _mm_prefetch(reinterpret_cast<const char*>(xp[c] + xrs + S * (j - 1) - 1), _MM_HINT_T1);
      }
    };
    int64_t j = 1;
    for (; j + J <= full_end; j += J, d += J * ds) {
      ask_next_row(j);
      weight_steps<O, CI, J, S>(d, ds, xp, S * j - 1, acc);
    }
    for (; j < full_end; ++j, d += ds) {
      ask_next_row(j);
      weight_step<O, CI, 0, 3>(d, xp, S * j - 1, acc);
    }
    if (short_last && cols > 1) {
      weight_step<O, CI, 0, 2>(d, xp, S * (cols - 1) - 1, acc);
      d += ds;
    }
    if (ask) {
      for (int c = 0; c < CI; ++c) _mm_prefetch(reinterpret_cast<const char*>(xp[c] + xrs + S * cols), _MM_HINT_T1);
    }
  }
  constexpr __mmask8 all = 0xFF;
  for (int o = 0; o < O; ++o) {
    for (int c = 0; c < CI; ++c) {
      for (int kx = 0; kx < 3; ++kx) {
        double* s = sums + c * sc + kx * so + kLanes * o;
        const __m512 a = acc[o][c][kx];
        const __m256 lo = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0x0F, _mm512_castps_pd(a), 0));
        const __m256 hi = _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0x0F, _mm512_castps_pd(a), 1));
        _mm512_storeu_pd(s, _mm512_add_pd(_mm512_loadu_pd(s), _mm512_maskz_cvtps_pd(all, lo)));
        _mm512_storeu_pd(s + 8, _mm512_add_pd(_mm512_loadu_pd(s + 8), _mm512_maskz_cvtps_pd(all, hi)));
      }
    }
  }
}

// A band's transposed dy rows: in L1 beside the x rows a block streams.
constexpr int64_t kDyBandBytes = int64_t{24} << 10;

// Output channel vectors per block: 2 where 32 output and 4 input channels divide the group,
// else 1 where 16 and 8 do (a block takes 4 / O input channels); 0: the geometry does not fit.
int weight_vectors(const ConvGeometry& g) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  if (cog % 32 == 0 && cig % 4 == 0) return 2;
  if (cog % 16 == 0 && cig % 8 == 0) return 1;
  return 0;
}

// The weight gradients' frame: per group (one thread's), per image, bands of dy rows whose
// `row_floats` floats per row (as transposed) fill kDyBandBytes; each band transposed by
// transpose(dy_group, y0, y1, band, ahead: the next band's dy, 0 at the last), then summed by
// sweep(band, x_group, y0, y1, sums) into the group's sums in double, sums[(i * 9 + ky * 3 + kx)
// * cout_g + o], which go to dw at the end.
template <class Transpose, class Sweep>
void weight_gradient_by_bands(const ConvGeometry& g, int64_t row_floats, const float* dy, const float* x, float* dw,
                              Transpose transpose, Sweep sweep) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  const int64_t rows_per_band = std::max<int64_t>(1, kDyBandBytes / (row_floats * int64_t{sizeof(float)}));
#pragma omp parallel if (g.groups > 1)
  {
    std::vector<double> sums(static_cast<size_t>(cig * kTaps * cog));
    const Scratch band(rows_per_band * row_floats);
    const auto [lo, hi] = thread_share(g.groups);
    for (int64_t grp = lo; grp < hi; ++grp) {
      std::fill(sums.begin(), sums.end(), 0.0);
      for (int64_t n = 0; n < g.N; ++n) {
        const float* dyg = dy + (n * g.C_out + grp * cog) * g.P();
        const float* xg = x + (n * g.C_in + grp * cig) * g.HW();
        for (int64_t y0 = 0; y0 < g.H_out; y0 += rows_per_band) {
          const int64_t y1 = std::min(g.H_out, y0 + rows_per_band);
          transpose(dyg, y0, y1, band.get(), y1 < g.H_out ? rows_per_band * g.W_out : 0);
          sweep(band.get(), xg, y0, y1, sums.data());
        }
      }
      float* dwg = dw + grp * cog * cig * kTaps;
      for (int64_t o = 0; o < cog; ++o) {
        for (int64_t i = 0; i < cig; ++i) {
          for (int t = 0; t < kTaps; ++t) {
            dwg[(o * cig + i) * kTaps + t] = static_cast<float>(sums[(i * kTaps + t) * cog + o]);
          }
        }
      }
    }
  }
}

// The dy rows [r0, r1) of band [y0, y1) whose kernel row ky reads a row inside x (sh r + ky - ph).
std::pair<int64_t, int64_t> rows_reaching(const ConvGeometry& g, int ky, int64_t y0, int64_t y1) {
  const int64_t r0 = std::clamp(ceil_div(g.ph - ky, g.sh), y0, y1);
  return {r0, std::clamp(floor_div(g.H - 1 + g.ph - ky, g.sh) + 1, r0, y1)};
}

// Per band, per block of output channels, input channels and kernel row one weight_block.
template <int O, int S>
void backward_weight_with(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
  constexpr int CI = 4 / O, J = 4 / O;  // 12 sums and J O dy vectors in registers
  const int64_t cig = g.cin_g(), cog = g.cout_g(), row_floats = g.W_out * cog, sc = kTaps * cog;
  const bool short_last = S * (g.W_out - 1) + 1 >= g.W;
  auto transpose = [&](const float* dyg, int64_t y0, int64_t y1, float* band, int64_t ahead) {
    // The next band's dy asked for tile by tile (evicted first: 2-5% faster).
    transpose_dy_rows(dyg, g.P(), g.W_out, y0, y1, cog, band, ahead);
  };
  auto sweep = [&](const float* band, const float* xg, int64_t y0, int64_t y1, double* sums) {
    for (int64_t o0 = 0; o0 < cog; o0 += kLanes * O) {
      for (int64_t i0 = 0; i0 < cig; i0 += CI) {
        for (int ky = 0; ky < 3; ++ky) {
          const auto [r0, r1] = rows_reaching(g, ky, y0, y1);
          if (r1 == r0) continue;
          // The first block of output channels asks for the x rows after its own (evicted
          // first: layer3's 3 x 3 / 2 183 -> 207-223 GFLOP/s).
          weight_block<O, CI, J, S>(band + (r0 - y0) * row_floats + o0, cog,
                                    xg + i0 * g.HW() + (g.sh * r0 + ky - g.ph) * g.W, g.HW(), g.sh * g.W, r1 - r0,
                                    g.W_out, short_last, sums + i0 * sc + ky * 3 * cog + o0, sc, cog, o0 == 0);
        }
      }
    }
  };
  weight_gradient_by_bands(g, row_floats, dy, x, dw, transpose, sweep);
}

// The kernel rows that reach one dx row: where each one's dy row starts (floats from the block's
// dy) and its weights (floats from a dy channel's).
struct InputRows {
  int count = 0;
  int64_t dy[3];
  int64_t w[3];
};

// ---- Pairs of positions: 8 channels per group at stride 1 ----
//
// With 8 channels per group along the vectors (ResNeXt's layer2) a vector of 16 lanes holds 8
// channels at 2 adjacent positions (lane 2 k + s: channel k at position 2 v + s of vector v), so
// that a tap's source values are two adjacent columns of x (or dy): one 64-bit broadcast straight
// from the tensor (vbroadcastsd, a load), with each weight twice. At stride 1 vector v's kernel
// column kx reads the pair from column 2 v + kx - 1 in the forward (2 v + 1 - kx in the input
// gradient): P + 2 broadcasts per 3 P / 2 multiply-adds, per output row; at stride 1 down two
// output rows are summed at once, each pair broadcast once for both (forward_pair_rows: on Ice
// Lake broadcasts, not multiply-adds, bounded the one-row block). The pair that reaches over the
// row's start or end keeps the column inside (a masked broadcast), and the accumulators are
// transposed as 8 x 8 blocks of pairs on the way out. Only at stride 1: at stride 2 two positions' columns
// are 2 apart. (Copying two groups' rows interleaved instead, so that a vector holds 2 groups x 8
// channels at one position, cost more in the copy than it saved: layer2's 3 x 3 / 2 forward 210
// -> 160 GFLOP/s, standalone, 2026-12-07.)

// The vector v (< V) whose kernel column kx reads the pair from index m (of the block's source
// row, from column -1 of its first position), or -1: 2 v + kx = m in the forward, 2 v + 2 - kx
// in the input gradient (`mirrored`).
constexpr int pair_vector(int V, bool mirrored, int m, int kx) {
  const int k = mirrored ? 2 - kx : kx;
  if (m < k || (m - k) % 2 != 0 || (m - k) / 2 >= V) return -1;
  return (m - k) / 2;
}

// Pair m of the block's source row, broadcast. With `head` (the row's first block) pair 0 is
// (padding, column 0), with `tail` (its last) pair 2 V (last column, padding): only the lane of
// the column inside is kept.
template <int V, bool head, bool tail, int m>
__attribute__((always_inline)) inline __m512 pair_source(const float* r) {
  if constexpr (head && m == 0) {
    return _mm512_maskz_mov_ps(0xAAAA, _mm512_set1_ps(r[1]));
  } else if constexpr (tail && m == 2 * V) {
    return _mm512_maskz_mov_ps(0x5555, _mm512_set1_ps(r[m]));
  } else {
    double pair;
    std::memcpy(&pair, r + m, sizeof pair);
    return _mm512_castpd_ps(_mm512_set1_pd(pair));
  }
}

// Pair m of the block's source row into every vector whose tap reads it.
template <int V, bool mirrored, bool head, bool tail, int m>
__attribute__((always_inline)) inline void pair_column(const float* r, const __m512 (&w)[3], __m512 (&acc)[V]) {
  constexpr int v0 = pair_vector(V, mirrored, m, 0), v1 = pair_vector(V, mirrored, m, 1), v2 = pair_vector(V, mirrored, m, 2);
  if constexpr (v0 >= 0 || v1 >= 0 || v2 >= 0) fan_out<v0, v1, v2>(w, pair_source<V, head, tail, m>(r), acc);
}

// The same into two output rows' vectors, kernel row wa's taps into acc_a (with `to_a`) and wb's
// into acc_b (with `to_b`): one broadcast for up to 6 multiply-adds.
template <int V, bool mirrored, bool head, bool tail, bool to_a, bool to_b, int m>
__attribute__((always_inline)) inline void pair_column_twice(const float* r, const __m512 (&wa)[3], const __m512 (&wb)[3],
                                                             __m512 (&acc_a)[V], __m512 (&acc_b)[V]) {
  constexpr int v0 = pair_vector(V, mirrored, m, 0), v1 = pair_vector(V, mirrored, m, 1), v2 = pair_vector(V, mirrored, m, 2);
  if constexpr (v0 >= 0 || v1 >= 0 || v2 >= 0) {
    const __m512 xv = pair_source<V, head, tail, m>(r);
    if constexpr (to_a) fan_out<v0, v1, v2>(wa, xv, acc_a);
    if constexpr (to_b) fan_out<v0, v1, v2>(wb, xv, acc_b);
  }
}

template <int V, bool mirrored, bool head, bool tail, bool to_a, bool to_b, int... M>
__attribute__((always_inline)) inline void pair_row_twice(const float* r, const __m512 (&wa)[3], const __m512 (&wb)[3],
                                                          __m512 (&acc_a)[V], __m512 (&acc_b)[V],
                                                          std::integer_sequence<int, M...>) {
  (pair_column_twice<V, mirrored, head, tail, to_a, to_b, M>(r, wa, wb, acc_a, acc_b), ...);
}

// A source row into two output rows' vectors by the kernel rows at wa (for acc_a) and wb (for
// acc_b), either null where the row does not reach that output row.
template <int V, bool mirrored, bool head, bool tail>
__attribute__((always_inline)) inline void pair_row_into_two(const float* r, const float* wa, const float* wb,
                                                             __m512 (&acc_a)[V], __m512 (&acc_b)[V]) {
  constexpr auto pairs = std::make_integer_sequence<int, 2 * V + 1>{};
  auto load = [](const float* p, __m512 (&w)[3]) {
    for (int kx = 0; kx < 3; ++kx) w[kx] = _mm512_load_ps(p + kx * kLanes);
  };
  __m512 a[3], b[3];
  if (wa != nullptr && wb != nullptr) {
    load(wa, a), load(wb, b);
    pair_row_twice<V, mirrored, head, tail, true, true>(r, a, b, acc_a, acc_b, pairs);
  } else if (wa != nullptr) {
    load(wa, a);
    pair_row_twice<V, mirrored, head, tail, true, false>(r, a, a, acc_a, acc_b, pairs);
  } else if (wb != nullptr) {
    load(wb, b);
    pair_row_twice<V, mirrored, head, tail, false, true>(r, b, b, acc_a, acc_b, pairs);
  }
}

template <int V, bool mirrored, bool head, bool tail, int... M>
__attribute__((always_inline)) inline void pair_row(const float* r, const __m512 (&w)[3], __m512 (&acc)[V],
                                                    std::integer_sequence<int, M...>) {
  (pair_column<V, mirrored, head, tail, M>(r, w, acc), ...);
}

// a[j] (8 pairs of floats as doubles) transposed: pair k of a[j] becomes pair j of a[k] (24
// shuffles). Its own inverse: channels x pairs of positions <-> pairs x channels.
__attribute__((always_inline)) inline void transpose_pairs(__m512d (&a)[8]) {
  constexpr __mmask8 all = 0xFF;
  // c[j + h]: 128-bit block L holds pair 2 L + h of a[j], a[j + 1] (j even).
  __m512d c[8];
  for (int j = 0; j < 8; j += 2) {
    c[j] = _mm512_maskz_unpacklo_pd(all, a[j], a[j + 1]), c[j + 1] = _mm512_maskz_unpackhi_pd(all, a[j], a[j + 1]);
  }
  // Then 128-bit blocks: pair 2 j + h of a[0-7] from block j of c[h], c[2 + h], c[4 + h], c[6 + h].
  for (int h = 0; h < 2; ++h) {
    const __m512 in[4] = {_mm512_castpd_ps(c[h]), _mm512_castpd_ps(c[2 + h]), _mm512_castpd_ps(c[4 + h]),
                          _mm512_castpd_ps(c[6 + h])};
    __m512 out[4];
    transpose_blocks(in, out);
    for (int j = 0; j < 4; ++j) a[2 * j + h] = _mm512_castps_pd(out[j]);
  }
}

// acc[v] (lane 2 k + s: channel k at position 2 v + s) to out[k * os + p] for k < 8, p < 2 V.
template <int V>
__attribute__((always_inline)) inline void store_pairs(const __m512 (&acc)[V], float* out, int64_t os) {
  for (int v0 = 0; v0 < V; v0 += 8) {
    const int n = std::min(8, V - v0);
    __m512d a[8];
    for (int j = 0; j < 8; ++j) a[j] = j < n ? _mm512_castps_pd(acc[v0 + j]) : _mm512_setzero_pd();
    transpose_pairs(a);
    const __mmask16 keep = lanes_mask(2 * n);
    for (int k = 0; k < 8; ++k) _mm512_mask_storeu_ps(out + k * os + 2 * v0, keep, _mm512_castpd_ps(a[k]));
  }
}

// The 8 output channels' biases (or zeros, with none), each in both lanes of its channel.
__attribute__((always_inline)) inline __m512 pair_bias(const float* bias) {
  if (bias == nullptr) return _mm512_setzero_ps();
  const __m512i twice = _mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  return _mm512_maskz_permutexvar_ps(0xFFFF, twice, _mm512_maskz_loadu_ps(0xFF, bias));
}

// The forward's block: 8 output channels at positions [p0, p0 + P) of one output row, as
// forward_block (the same arguments, S = 1) with weights packed by pack_weights<true, 8, 2>
// (w[(c * 3 + r) * 48 + kx * 16 + 2 k + s]).
template <int P, bool head, bool tail>
__attribute__((noinline)) void forward_pair_block(const float* x, int64_t cs, int64_t W, int rows, int64_t cin,
                                                  const float* w, const float* bias, float* out, int64_t os,
                                                  const char* prefetch) {
  constexpr int V = P / 2;
  static_assert(P % 2 == 0);
  __m512 acc[V];
  const __m512 init = pair_bias(bias);
  for (int v = 0; v < V; ++v) acc[v] = init;
  for (int64_t c = 0; c < cin; ++c) {
    const char* ahead = prefetch + c * cs * int64_t{sizeof(float)};
    for (int r = 0; r < rows; ++r) {
      _mm_prefetch(ahead + 128 * r, _MM_HINT_T1);
      _mm_prefetch(ahead + 128 * r + 64, _MM_HINT_T1);
      const float* wr = w + (c * 3 + r) * 3 * kLanes;
      const __m512 wv[3] = {_mm512_load_ps(wr), _mm512_load_ps(wr + kLanes), _mm512_load_ps(wr + 2 * kLanes)};
      pair_row<V, false, head, tail>(x + c * cs + r * W, wv, acc, std::make_integer_sequence<int, 2 * V + 1>{});
    }
  }
  store_pairs<V>(acc, out, os);
}

// Two output rows (oy, oy + 1) of forward_pair_block at once, from the x rows i0 <= i < i1 of the
// four they read (row i counted from oy's top, x pointing at row i0; kernel row i for oy, i - 1 for
// oy + 1; w from kernel row 0), the second row's outputs next_row floats after the first's. Why:
// each x pair is then broadcast once for 6 multiply-adds instead of 3, and on Ice Lake a
// broadcast from memory issues at one per cycle (a vector load at two): the one-row block, 25
// broadcasts per 36 multiply-adds, ran at 0.69 of the FMA rate there (standalone loop, 2026-12-08).
template <int P, bool head, bool tail>
__attribute__((noinline)) void forward_pair_rows(const float* x, int64_t cs, int64_t W, int i0, int i1, int64_t cin,
                                                 const float* w, const float* bias, float* out, int64_t os,
                                                 int64_t next_row, const char* prefetch) {
  constexpr int V = P / 2;
  static_assert(P % 2 == 0);
  __m512 acc_a[V], acc_b[V];
  const __m512 init = pair_bias(bias);
  for (int v = 0; v < V; ++v) acc_a[v] = init, acc_b[v] = init;
  for (int64_t c = 0; c < cin; ++c) {
    const char* ahead = prefetch + c * cs * int64_t{sizeof(float)};
    const float* wc = w + c * 3 * 3 * kLanes;
    for (int i = i0; i < i1; ++i) {
      _mm_prefetch(ahead + 128 * (i - i0), _MM_HINT_T1);
      _mm_prefetch(ahead + 128 * (i - i0) + 64, _MM_HINT_T1);
      pair_row_into_two<V, false, head, tail>(x + c * cs + (i - i0) * W, i <= 2 ? wc + i * 3 * kLanes : nullptr,
                                              i >= 1 ? wc + (i - 1) * 3 * kLanes : nullptr, acc_a, acc_b);
    }
  }
  store_pairs<V>(acc_a, out, os);
  store_pairs<V>(acc_b, out + next_row, os);
}

// The input gradient's block: 8 input channels at positions [p0, p0 + P) of one dx row, as
// input_block (the same arguments, S = 1) with weights packed by pack_weights<false, 8, 2>
// (w[(o * 9 + ky * 3 + kx) * 16 + 2 i + s]).
template <int P, bool head, bool tail>
__attribute__((noinline)) void input_pair_block(const float* dy, int64_t cs, const InputRows& rows, int64_t cout,
                                                const float* w, float* out, int64_t os, const char* prefetch) {
  constexpr int V = P / 2;
  static_assert(P % 2 == 0);
  __m512 acc[V];
  for (int v = 0; v < V; ++v) acc[v] = _mm512_setzero_ps();
  for (int64_t o = 0; o < cout; ++o) {
    _mm_prefetch(prefetch + o * cs * int64_t{sizeof(float)}, _MM_HINT_T1);
    for (int r = 0; r < rows.count; ++r) {
      const float* wr = w + o * kTaps * kLanes + rows.w[r];
      const __m512 wv[3] = {_mm512_load_ps(wr), _mm512_load_ps(wr + kLanes), _mm512_load_ps(wr + 2 * kLanes)};
      pair_row<V, true, head, tail>(dy + o * cs + rows.dy[r], wv, acc, std::make_integer_sequence<int, 2 * V + 1>{});
    }
  }
  store_pairs<V>(acc, out, os);
}

// The dy rows that reach two dx rows (iy, iy + 1) at stride 1 down: where each starts (floats from
// the block's dy) and the weights of its kernel row for each dx row (floats from a dy channel's;
// -1: it does not reach that row).
struct InputRowsTwo {
  int count = 0;
  int64_t dy[4];
  int64_t wa[4], wb[4];
};

// Two dx rows of input_pair_block at once, the second's outputs next_row floats after the first's:
// each dy pair broadcast once for both (see forward_pair_rows for why).
template <int P, bool head, bool tail>
__attribute__((noinline)) void input_pair_rows(const float* dy, int64_t cs, const InputRowsTwo& rows, int64_t cout,
                                               const float* w, float* out, int64_t os, int64_t next_row,
                                               const char* prefetch) {
  constexpr int V = P / 2;
  static_assert(P % 2 == 0);
  __m512 acc_a[V], acc_b[V];
  for (int v = 0; v < V; ++v) acc_a[v] = _mm512_setzero_ps(), acc_b[v] = _mm512_setzero_ps();
  for (int64_t o = 0; o < cout; ++o) {
    _mm_prefetch(prefetch + o * cs * int64_t{sizeof(float)}, _MM_HINT_T1);
    const float* wo = w + o * kTaps * kLanes;
    for (int r = 0; r < rows.count; ++r) {
      pair_row_into_two<V, true, head, tail>(dy + o * cs + rows.dy[r], rows.wa[r] >= 0 ? wo + rows.wa[r] : nullptr,
                                             rows.wb[r] >= 0 ? wo + rows.wb[r] : nullptr, acc_a, acc_b);
    }
  }
  store_pairs<V>(acc_a, out, os);
  store_pairs<V>(acc_b, out + next_row, os);
}

// The weight gradient: 8 output channels x 2 positions per vector of dy (transposed per band of
// rows, as pairs) and one accumulator per input channel (4) and kernel column of a kernel row:
// per 4 pairs of positions 4 loads of dy and 48 multiply-adds, each with its pair of x columns
// broadcast from x (column 2 j + kx - 1 for pair j; 36 broadcasts, one per pair of columns the
// step reads), the lanes of a pair added at the end.

// dy rows [y0, y1) of 8 channels (ds floats apart, W_out columns) as pairs: element (r, p, k) at
// out[((r - y0) * pairs + p / 2) * 16 + 2 k + p % 2] (pairs = ceil(W_out / 2); an odd row's last
// pair ends in a 0). Each 8 x 16 tile asks for the same tile `ahead` floats on (0: nothing).
void transpose_dy_pairs(const float* dy, int64_t ds, int64_t W_out, int64_t y0, int64_t y1, float* out, int64_t ahead) {
  const int64_t pairs = (W_out + 1) / 2;
  for (int64_t r = y0; r < y1; ++r) {
    for (int64_t j0 = 0; j0 < W_out; j0 += kLanes) {
      const int64_t n = std::min<int64_t>(kLanes, W_out - j0);
      const float* s = dy + r * W_out + j0;
      __m512d a[8];
      for (int k = 0; k < 8; ++k) a[k] = _mm512_castps_pd(_mm512_maskz_loadu_ps(lanes_mask(n), s + k * ds));
      if (ahead != 0) {
        for (int k = 0; k < 8; ++k) _mm_prefetch(reinterpret_cast<const char*>(s + k * ds + ahead), _MM_HINT_T1);
      }
      transpose_pairs(a);
      float* d = out + ((r - y0) * pairs + j0 / 2) * kLanes;
      for (int64_t u = 0; u < (n + 1) / 2; ++u) _mm512_store_ps(d + u * kLanes, _mm512_castpd_ps(a[u]));
    }
  }
}

// Pair j of a row at a row's ends: each kernel column's pair of x columns (2 j + kx - 1, 2 j +
// kx) with a column outside [0, W) left out (its lane 0; both outside: no product).
template <int CI>
__attribute__((always_inline)) inline void pair_edge_step(const float* d, const float* const (&xp)[CI], int64_t j,
                                                          int64_t W, __m512 (&acc)[CI][3]) {
  const __m512 dv = _mm512_load_ps(d);
  for (int kx = 0; kx < 3; ++kx) {
    const int64_t c0 = 2 * j + kx - 1, c1 = c0 + 1;
    const bool in0 = c0 >= 0 && c0 < W, in1 = c1 >= 0 && c1 < W;
    for (int c = 0; c < CI && (in0 || in1); ++c) {
      __m512 xv;
      if (in0 && in1) {
        double pair;
        std::memcpy(&pair, xp[c] + c0, sizeof pair);
        xv = _mm512_castpd_ps(_mm512_set1_pd(pair));
      } else {
        xv = in0 ? _mm512_maskz_mov_ps(0x5555, _mm512_set1_ps(xp[c][c0])) : _mm512_maskz_mov_ps(0xAAAA, _mm512_set1_ps(xp[c][c1]));
      }
      acc[c][kx] = _mm512_fmadd_ps(dv, xv, acc[c][kx]);
    }
  }
}

// J inner pairs from pair j (dy from d, 16 floats per pair), all 3 kernel columns of CI input
// channels: pair q's kernel column kx reads the x columns from col + 2 q + kx on (col = 2 j - 1),
// each such pair of columns broadcast once for every pair and kernel column that reads it: 2 J + 1
// broadcasts per 3 J multiply-adds and input channel (one pair at a time: one per multiply-add).
// Each sum takes its pairs in the same order as one at a time.
template <int CI, int J>
__attribute__((always_inline)) inline void pair_weight_steps(const float* d, const float* const (&xp)[CI], int64_t col,
                                                             __m512 (&acc)[CI][3]) {
  __m512 dv[J];
  _Pragma("GCC unroll 16") for (int q = 0; q < J; ++q) dv[q] = _mm512_load_ps(d + q * kLanes);
  _Pragma("GCC unroll 16") for (int c = 0; c < CI; ++c) {
    _Pragma("GCC unroll 16") for (int m = 0; m < 2 * J + 1; ++m) {
      double pair;
      std::memcpy(&pair, xp[c] + col + m, sizeof pair);
      const __m512 xv = _mm512_castpd_ps(_mm512_set1_pd(pair));
      _Pragma("GCC unroll 16") for (int q = 0; q < J; ++q) {
        const int kx = m - 2 * q;
        if (kx >= 0 && kx <= 2) acc[c][kx] = _mm512_fmadd_ps(dv[q], xv, acc[c][kx]);
      }
    }
  }
}

// The 12 sums of 8 output channels x CI = 4 input channels x kernel columns 0-2 of one kernel row:
// dy as pairs from d (16 floats per pair, `pairs` per row), x from the x row of the block's first
// dy row of its first input channel (channels cs apart, rows xrs apart, W columns), over `rows` dy
// rows; added in double to sums[c * sc + kx * 8 + k]. The inner pairs go J at a time
// (pair_weight_steps): one at a time, 8 input channels (24 sums), each pair of x columns was
// broadcast for one multiply-add, and on Ice Lake a broadcast from memory issues at one per cycle.
// With `ask`, each row asks for the x row after it, a line per 8 pairs it moves on. Standalone on
// the Ice Lake VM (2026-12-08, medians of 7 alternated rounds), layer2's stride-1 row: 136 -> 194
// GFLOP/s.
template <int CI, int J>
__attribute__((noinline)) void weight_pair_block(const float* d, const float* x, int64_t cs, int64_t xrs, int64_t rows,
                                                 int64_t W, double* sums, int64_t sc, bool ask) {
  static_assert(8 % J == 0, "the steps of J from pair 1 meet every line's first");
  const int64_t pairs = (W + 1) / 2;
  // Pairs [1, inner) read all their columns inside the row (2 j + 2 < W).
  const int64_t inner = std::max<int64_t>(1, std::min(pairs, (W - 1) / 2));
  __m512 acc[CI][3];
  for (int c = 0; c < CI; ++c) {
    for (int kx = 0; kx < 3; ++kx) acc[c][kx] = _mm512_setzero_ps();
  }
  for (int64_t r = 0; r < rows; ++r, d += pairs * kLanes) {
    const float* xp[CI];
    for (int c = 0; c < CI; ++c) xp[c] = x + c * cs + r * xrs;
    pair_edge_step(d, xp, 0, W, acc);
    auto ask_next_row = [&](int64_t j) {
      if (ask && j % 8 == 1) {
        for (int c = 0; c < CI; ++c) _mm_prefetch(reinterpret_cast<const char*>(xp[c] + xrs + 2 * (j - 1)), _MM_HINT_T1);
      }
    };
    int64_t j = 1;
    for (; j + J <= inner; j += J) {
      ask_next_row(j);
      pair_weight_steps<CI, J>(d + j * kLanes, xp, 2 * j - 1, acc);
    }
    for (; j < inner; ++j) {
      ask_next_row(j);
      pair_weight_steps<CI, 1>(d + j * kLanes, xp, 2 * j - 1, acc);
    }
    for (j = inner; j < pairs; ++j) pair_edge_step(d + j * kLanes, xp, j, W, acc);
    if (ask) {
      for (int c = 0; c < CI; ++c) _mm_prefetch(reinterpret_cast<const char*>(xp[c] + xrs + W - 1), _MM_HINT_T1);
    }
  }
  // Lanes 2 k and 2 k + 1 added: (k0, k4, k1, k5, k2, k6, k3, k7) put in order.
  constexpr __mmask8 all = 0xFF;
  const __m512i order = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
  for (int c = 0; c < CI; ++c) {
    for (int kx = 0; kx < 3; ++kx) {
      const __m512d a = _mm512_castps_pd(acc[c][kx]);
      const __m512d lo = _mm512_maskz_cvtps_pd(all, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0x0F, a, 0)));
      const __m512d hi = _mm512_maskz_cvtps_pd(all, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0x0F, a, 1)));
      const __m512d t = _mm512_add_pd(_mm512_maskz_unpacklo_pd(all, lo, hi), _mm512_maskz_unpackhi_pd(all, lo, hi));
      double* s = sums + c * sc + kx * 8;
      _mm512_storeu_pd(s, _mm512_add_pd(_mm512_loadu_pd(s), _mm512_maskz_permutexvar_pd(all, order, t)));
    }
  }
}

// Per band (dy as pairs), per CI input channels and kernel row one weight_pair_block.
void backward_weight_pairs(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
  constexpr int CI = 4, J = 4;  // 2 or 8 pairs per step: 181 / 175 GFLOP/s on layer2, 4: 194
  const int64_t cig = g.cin_g(), cog = g.cout_g(), row_floats = (g.W_out + 1) / 2 * kLanes, sc = kTaps * cog;
  auto transpose = [&](const float* dyg, int64_t y0, int64_t y1, float* band, int64_t ahead) {
    transpose_dy_pairs(dyg, g.P(), g.W_out, y0, y1, band, ahead);
  };
  auto sweep = [&](const float* band, const float* xg, int64_t y0, int64_t y1, double* sums) {
    for (int64_t i0 = 0; i0 < cig; i0 += CI) {
      for (int ky = 0; ky < 3; ++ky) {
        const auto [r0, r1] = rows_reaching(g, ky, y0, y1);
        if (r1 == r0) continue;
        weight_pair_block<CI, J>(band + (r0 - y0) * row_floats, xg + i0 * g.HW() + (g.sh * r0 + ky - g.ph) * g.W,
                                 g.HW(), g.sh * g.W, r1 - r0, g.W, sums + i0 * sc + ky * 3 * cog, sc, true);
      }
    }
  };
  weight_gradient_by_bands(g, row_floats, dy, x, dw, transpose, sweep);
}

// ---- The forward ----
//
// A block sums 16 output channels at P positions of one output row (P accumulators, P = 24, 12 or
// 6): per input channel and kernel row, the 3 kernel columns' weight vectors are loaded once and
// each x column the block reaches is broadcast once, feeding every position whose tap reads it
// (at stride 2 an odd column feeds kernel column 0 of one position and column 2 of the one
// before: 2 P + 1 broadcasts for 3 P multiply-adds). The accumulators are transposed 16 x 16 on
// the way out. Standalone, best of 30, 3 alternated rounds (2026-12-07), against the
// per-position kernels: layer3's 3 x 3 / 2 200-208 -> 286-289, layer4's 190-197 -> 292-294,
// layer3's 3 x 3 250-258 -> ~300, layer4's 250-271 -> ~305 GFLOP/s.

// The position q (0 <= q < P) whose kernel column kx reads column m of the block's x (column S
// p0 - 1 + m of the row), or -1: none, or a tap the padding takes (the row's first position's
// kernel column 0 with `head`, its last position's column 2 with `tail`).
constexpr int tap_position(int P, int S, bool head, bool tail, int m, int kx) {
  if (m < kx || (m - kx) % S != 0 || (m - kx) / S >= P) return -1;
  const int q = (m - kx) / S;
  if ((head && q == 0 && kx == 0) || (tail && q == P - 1 && kx == 2)) return -1;
  return q;
}

// Column m of the block's x row (broadcast once) into every position that reads it, in each of
// the O vectors of output channels.
template <int O, int P, int S, bool head, bool tail, int m>
__attribute__((always_inline)) inline void forward_column(const float* xr, const __m512 (&w)[O][3], __m512 (&acc)[O][P]) {
  constexpr int q0 = tap_position(P, S, head, tail, m, 0), q1 = tap_position(P, S, head, tail, m, 1),
                q2 = tap_position(P, S, head, tail, m, 2);
  if constexpr (q0 >= 0 || q1 >= 0 || q2 >= 0) {
    const __m512 xv = _mm512_set1_ps(xr[m]);
    for (int o = 0; o < O; ++o) fan_out<q0, q1, q2>(w[o], xv, acc[o]);
  }
}

template <int O, int P, int S, bool head, bool tail, int... M>
__attribute__((always_inline)) inline void forward_row(const float* xr, const __m512 (&w)[O][3], __m512 (&acc)[O][P],
                                                       std::integer_sequence<int, M...>) {
  (forward_column<O, P, S, head, tail, M>(xr, w, acc), ...);
}

// acc[q] (16 channels at position q) to out[l * os + q] for l < 16, q < P.
template <int P>
__attribute__((always_inline)) inline void store_transposed(const __m512 (&acc)[P], float* out, int64_t os) {
  for (int q0 = 0; q0 < P; q0 += kLanes) {
    constexpr int kFull = kLanes;
    const int n = std::min(kFull, P - q0);
    __m512 a[kLanes];
    for (int k = 0; k < kLanes; ++k) a[k] = k < n ? acc[q0 + k] : _mm512_setzero_ps();
    transpose16(a);
    const __mmask16 keep = lanes_mask(n);
    for (int l = 0; l < kLanes; ++l) _mm512_mask_storeu_ps(out + l * os + q0, keep, a[l]);
  }
}

// 16 O output channels (O vectors of 16) at positions [p0, p0 + P) of one output row: out (their
// first) = bias + the sum over `cin` input channels (x from the first kernel row inside x, at
// column S p0 - 1; channels cs apart, rows W apart; `rows` kernel rows) of 3 kernel columns each
// (weights packed by pack_weights<true, 16>: w[(c * 3 + r) * 48 + kx * 16 + o], from the first
// kernel row inside x; vector o's 16 cin 9 floats on). Meanwhile each input channel and kernel row
// asks for 2 lines from prefetch + c cs on.
// Why O = 2 where a group has 32 output channels (layer4): each x column is then broadcast once
// for twice the multiply-adds, and on Ice Lake broadcasts from memory issue at one per cycle; at
// stride 2 the one-vector block broadcasts 49 columns per 72 multiply-adds, which bounds it at
// 0.73 of the FMA rate there before anything else.
template <int O, int P, int S, bool head, bool tail>
__attribute__((noinline)) void forward_block(const float* x, int64_t cs, int64_t W, int rows, int64_t cin,
                                             const float* w, const float* bias, float* out, int64_t os,
                                             const char* prefetch) {
  static_assert(O * P <= 24, "accumulators, weights and a broadcast in 32 registers");
  __m512 acc[O][P];
  for (int o = 0; o < O; ++o) {
    const __m512 init = bias != nullptr ? _mm512_loadu_ps(bias + o * kLanes) : _mm512_setzero_ps();
    for (int q = 0; q < P; ++q) acc[o][q] = init;
  }
  const int64_t vector_floats = cin * kTaps * kLanes;  // from one vector's weights to the next's
  for (int64_t c = 0; c < cin; ++c) {
    const char* ahead = prefetch + c * cs * int64_t{sizeof(float)};
    for (int r = 0; r < rows; ++r) {
      _mm_prefetch(ahead + 128 * r, _MM_HINT_T1);
      _mm_prefetch(ahead + 128 * r + 64, _MM_HINT_T1);
      __m512 wv[O][3];
      for (int o = 0; o < O; ++o) {
        const float* wr = w + o * vector_floats + (c * 3 + r) * 3 * kLanes;
        for (int kx = 0; kx < 3; ++kx) wv[o][kx] = _mm512_load_ps(wr + kx * kLanes);
      }
      forward_row<O, P, S, head, tail>(x + c * cs + r * W, wv, acc, std::make_integer_sequence<int, S * (P - 1) + 3>{});
    }
  }
  for (int o = 0; o < O; ++o) store_transposed<P>(acc[o], out + o * kLanes * os, os);
}

using ForwardBlock = void (*)(const float*, int64_t, int64_t, int, int64_t, const float*, const float*, float*, int64_t,
                              const char*);
using ForwardRows = void (*)(const float*, int64_t, int64_t, int, int, int64_t, const float*, const float*, float*, int64_t,
                             int64_t, const char*);

// A row's blocks (first column, positions): 24 (12 with `narrow`) while as many are left, then 12
// and 6 while as many are left, and what is left after that (< 6) by a last block of 6 that ends
// at the row's end (recomputing up to 5 positions, in the same order). With at least kMinColumns
// columns it never starts the row.
struct RowSpan {
  int64_t p0;
  int P;
};
std::vector<RowSpan> row_spans(int64_t width, bool narrow = false) {
  std::vector<RowSpan> spans;
  int64_t p0 = 0;
  for (const int P : {24, 12, 6}) {
    if (narrow && P == 24) continue;
    for (; width - p0 >= P; p0 += P) spans.push_back({p0, P});
  }
  if (p0 < width) spans.push_back({width - 6, 6});
  return spans;
}

// The forward's blocks of a row (row_spans, at most 12 positions with O = 2 vectors of output
// channels); with `tail` the row's last block leaves out its last position's kernel column 2.
template <int S, bool pairs, int O>
struct RowBlocks {
  struct Block {
    int64_t p0;
    ForwardBlock run;
    ForwardRows run_two = nullptr;  // with `pairs`: two output rows at once
  };
  std::vector<Block> blocks;
  template <int P>
  static ForwardBlock pick(bool head, bool tail) {
    if constexpr (pairs) {
      static_assert(S == 1);
      if (head) return tail ? forward_pair_block<P, true, true> : forward_pair_block<P, true, false>;
      return tail ? forward_pair_block<P, false, true> : forward_pair_block<P, false, false>;
    } else if constexpr (O * P > 24) {
      return nullptr;  // never asked for: the spans are narrow
    } else {
      if (head) return tail ? forward_block<O, P, S, true, true> : forward_block<O, P, S, true, false>;
      return tail ? forward_block<O, P, S, false, true> : forward_block<O, P, S, false, false>;
    }
  }
  template <int P>
  static ForwardRows pick_two(bool head, bool tail) {
    if (head) return tail ? forward_pair_rows<P, true, true> : forward_pair_rows<P, true, false>;
    return tail ? forward_pair_rows<P, false, true> : forward_pair_rows<P, false, false>;
  }
  RowBlocks(int64_t W_out, bool tail) {
    for (const auto& [p0, P] : row_spans(W_out, O == 2)) {
      const bool h = p0 == 0, t = tail && p0 + P == W_out;
      blocks.push_back({p0, P == 24 ? pick<24>(h, t) : P == 12 ? pick<12>(h, t) : pick<6>(h, t)});
      if constexpr (pairs) blocks.back().run_two = P == 24 ? pick_two<24>(h, t) : P == 12 ? pick_two<12>(h, t) : pick_two<6>(h, t);
    }
  }
};

// Items of kRowsPerItem output rows, each row's blocks per 16 O output channels (8 with `pairs`,
// two rows at a time while two are left). The blocks of a row (or two) share out, two lines per x
// row and input channel, the x rows that the next one (or two) adds (after an item's last, those
// of the next item's first).
template <int S, bool pairs, int O = 1>
void forward_with(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  const RowBlocks<S, pairs, O> row(g.W_out, S * (g.W_out - 1) + 1 >= g.W);
  const auto pack = pack_weights<true, pairs ? 8 : 16, pairs ? 2 : 1>;
  // How many output rows one step takes from oy on, of an item ending at y1.
  auto step_rows = [&](int64_t oy, int64_t y1) -> int64_t { return pairs && g.sh == 1 && oy + 1 < y1 ? 2 : 1; };
  // The x rows [from, to) that output rows [oy, oy + n) read.
  auto x_rows = [&](int64_t oy, int64_t n) {
    const int64_t top = oy * g.sh - g.ph;
    return std::pair{std::max<int64_t>(0, top), std::min<int64_t>(g.H, top + (n - 1) * g.sh + 3)};
  };
  for_each_item(g, g.H_out, kRowsPerItem, w, pack, [&](const Item& it, const Item& next, const float* packed) {
    const float* xg = x + (it.n * g.C_in + it.grp * cig) * g.HW();
    for (int64_t oy = it.y0, n = 0; oy < it.y1; oy += n) {
      n = step_rows(oy, it.y1);
      const int64_t top = oy * g.sh - g.ph;
      const auto [from, to] = x_rows(oy, n);
      // What the next step adds (the next item's first step's, after an item's last).
      const float* ahead = nullptr;
      int64_t ahead_rows = 0;
      if (oy + n < it.y1) {
        const auto [next_from, next_to] = x_rows(oy + n, step_rows(oy + n, it.y1));
        ahead = xg + std::max(to, next_from) * g.W, ahead_rows = std::max<int64_t>(0, next_to - std::max(to, next_from));
      } else if (next.n >= 0) {
        const auto [next_from, next_to] = x_rows(next.y0, step_rows(next.y0, next.y1));
        ahead = x + (next.n * g.C_in + next.grp * cig) * g.HW() + next_from * g.W, ahead_rows = next_to - next_from;
      }
      // Per channel, the lines they span; block k asks for 2 per kernel row from line 2 k x rows
      // on (or, with nothing left, for its own x, in cache already).
      const uintptr_t span = reinterpret_cast<uintptr_t>(ahead) & ~uintptr_t{63};
      const int64_t span_lines =
          ahead_rows > 0 ? ceil_div(static_cast<int64_t>(reinterpret_cast<uintptr_t>(ahead + ahead_rows * g.W) - span), 64) : 0;
      const int64_t lines_per_block = 2 * (to - from);
      int64_t block = 0;
      for (int64_t o0 = 0; o0 < cog; o0 += O * kLanes) {
        const float* wo = packed + o0 * cig * kTaps;
        const float* bo = b != nullptr ? b + it.grp * cog + o0 : nullptr;
        float* yo = y + (it.n * g.C_out + it.grp * cog + o0) * g.P() + oy * g.W_out;
        for (const auto& blk : row.blocks) {
          const float* xs = xg + from * g.W + S * blk.p0 - 1;
          const char* pf = block * lines_per_block < span_lines
                               ? reinterpret_cast<const char*>(span + 64 * block * lines_per_block)
                               : reinterpret_cast<const char*>(xs + 1);
          if (n == 2) {
            blk.run_two(xs, g.HW(), g.W, static_cast<int>(from - top), static_cast<int>(to - top), cig, wo, bo, yo + blk.p0,
                        g.P(), g.W_out, pf);
          } else {
            blk.run(xs, g.HW(), g.W, static_cast<int>(to - from), cig, wo + (from - top) * 3 * kLanes, bo, yo + blk.p0, g.P(), pf);
          }
          ++block;
        }
      }
    }
  });
}

// ---- The input gradient ----
//
// A block sums 16 input channels at P positions of one dx row (P = 24, 12 or 6, from column p0):
// per dy channel and kernel row that reaches the row, the 3 kernel columns' weight vectors are
// loaded once and each dy column the block reaches is broadcast once, feeding every position
// whose tap it is (at stride 2 dy column b feeds dx column 2 b by kernel column 1, 2 b + 1 by
// column 2 and 2 b - 1 by column 0: about P / 2 broadcasts for 3 P / 2 multiply-adds). Transposed
// on the way out as the forward's. At stride 2 a dx row takes 1-2 kernel rows, so with 16 dy
// channels (layer3) a block's sums are 36 multiply-adds per output vector against 4 shuffles of
// the transposition: level with the per-position kernel (232 against 235 GFLOP/s standalone),
// so only from 32 (layer4: 251 -> 270; stride 1: layer3 and layer4 250 -> 306-317).

// The position q (0 <= q < P) that kernel column kx of dy column m of the block feeds, or -1:
// dy column m is column floor((p0 - 1) / S) + m of the row, p0 = par (mod S). With `head` (stride 1
// from column 0) the first position has no kernel column 2, with `tail` (the row's end) the last
// none of column 0: dy columns -1 and W_out.
constexpr int input_position(int P, int S, int par, bool head, bool tail, int m, int kx) {
  const int fd = par - 1 >= 0 ? (par - 1) / S : -1;  // floor((par - 1) / S), par < S
  const int q = S * (m + fd) - par - 1 + kx;
  if (q < 0 || q >= P) return -1;
  if ((head && q == 0 && kx == 2) || (tail && q == P - 1 && kx == 0)) return -1;
  return q;
}

template <int P, int S, int par, bool head, bool tail, int m>
__attribute__((always_inline)) inline void input_column(const float* dr, const __m512 (&w)[3], __m512 (&acc)[P]) {
  constexpr int q0 = input_position(P, S, par, head, tail, m, 0), q1 = input_position(P, S, par, head, tail, m, 1),
                q2 = input_position(P, S, par, head, tail, m, 2);
  if constexpr (q0 >= 0 || q1 >= 0 || q2 >= 0) {
    fan_out<q0, q1, q2>(w, _mm512_set1_ps(dr[m]), acc);
  }
}

template <int P, int S, int par, bool head, bool tail, int... M>
__attribute__((always_inline)) inline void input_row(const float* dr, const __m512 (&w)[3], __m512 (&acc)[P],
                                                     std::integer_sequence<int, M...>) {
  (input_column<P, S, par, head, tail, M>(dr, w, acc), ...);
}

// 16 input channels at positions [p0, p0 + P) of one dx row: out (their first) = the sum over
// `cout` dy channels (from dy, at column floor((p0 - 1) / S) of dy's row 0; channels cs apart)
// and the kernel rows `rows` names, weights packed by pack_weights<false, 16> (w[(o * 9 + ky * 3 +
// kx) * 16 + i]). Meanwhile each dy channel asks for one line from prefetch + o cs on.
template <int P, int S, int par, bool head, bool tail>
__attribute__((noinline)) void input_block(const float* dy, int64_t cs, const InputRows& rows, int64_t cout,
                                           const float* w, float* out, int64_t os, const char* prefetch) {
  constexpr int kColumns = (par + P) / S + 2;
  __m512 acc[P];
  for (int q = 0; q < P; ++q) acc[q] = _mm512_setzero_ps();
  for (int64_t o = 0; o < cout; ++o) {
    _mm_prefetch(prefetch + o * cs * int64_t{sizeof(float)}, _MM_HINT_T1);
    for (int r = 0; r < rows.count; ++r) {
      const float* wr = w + o * kTaps * kLanes + rows.w[r];
      const __m512 wv[3] = {_mm512_load_ps(wr), _mm512_load_ps(wr + kLanes), _mm512_load_ps(wr + 2 * kLanes)};
      input_row<P, S, par, head, tail>(dy + o * cs + rows.dy[r], wv, acc, std::make_integer_sequence<int, kColumns>{});
    }
  }
  store_transposed<P>(acc, out, os);
}

using InputBlock = void (*)(const float*, int64_t, const InputRows&, int64_t, const float*, float*, int64_t, const char*);
using InputRowsBlock = void (*)(const float*, int64_t, const InputRowsTwo&, int64_t, const float*, float*, int64_t, int64_t,
                                const char*);

// The input gradient's blocks of a dx row (row_spans): the last block of 6 over the row's end
// may start at an odd column (par).
template <int S, bool pairs>
struct InputRowBlocks {
  struct Block {
    int64_t p0;
    InputBlock run;
    InputRowsBlock run_two = nullptr;  // with `pairs`: two dx rows at once
  };
  std::vector<Block> blocks;
  template <int P, int par>
  static InputBlock pick(bool head, bool tail) {
    if constexpr (pairs) {
      static_assert(S == 1 && par == 0);
      if (head) return tail ? input_pair_block<P, true, true> : input_pair_block<P, true, false>;
      return tail ? input_pair_block<P, false, true> : input_pair_block<P, false, false>;
    }
    if (head) return tail ? input_block<P, S, par, true, true> : input_block<P, S, par, true, false>;
    return tail ? input_block<P, S, par, false, true> : input_block<P, S, par, false, false>;
  }
  InputRowBlocks(int64_t W, bool tail) {
    for (const auto& [p0, P] : row_spans(W)) {
      const bool h = S == 1 && p0 == 0, t = tail && p0 + P == W;
      if (P == 24) blocks.push_back({p0, pick<24, 0>(h, t)});
      if (P == 12) blocks.push_back({p0, pick<12, 0>(h, t)});
      // Only the last block over the row's end starts at an odd column.
      if (P == 6) blocks.push_back({p0, S == 2 && p0 % 2 == 1 ? pick<6, S - 1>(h, t) : pick<6, 0>(h, t)});
      if constexpr (pairs) blocks.back().run_two = P == 24 ? pick_two<24>(h, t) : P == 12 ? pick_two<12>(h, t) : pick_two<6>(h, t);
    }
  }
  template <int P>
  static InputRowsBlock pick_two(bool head, bool tail) {
    if (head) return tail ? input_pair_rows<P, true, true> : input_pair_rows<P, true, false>;
    return tail ? input_pair_rows<P, false, true> : input_pair_rows<P, false, false>;
  }
};

// dx rows iy and iy + 1 (stride 1 down, 8 channels per group; di: row iy of the group's first
// channel) from dy (dyg: the group's first channel), the dy rows in the order the one-row blocks
// take them (kernel rows ascending), so that each sum is the same.
template <class Blocks>
void input_two_rows(const ConvGeometry& g, const Blocks& row, const float* dyg, const float* packed, float* di, int64_t iy) {
  InputRowsTwo rows;
  for (int64_t d = iy + 1 + g.ph; d >= iy + g.ph - 2; --d) {
    const int64_t ka = iy + g.ph - d, kb = ka + 1;  // the kernel rows it takes into dx rows iy, iy + 1
    if (d < 0 || d >= g.H_out) continue;
    rows.dy[rows.count] = d * g.W_out;
    rows.wa[rows.count] = ka >= 0 && ka < 3 ? ka * 3 * kLanes : -1;
    rows.wb[rows.count] = kb >= 0 && kb < 3 ? kb * 3 * kLanes : -1;
    ++rows.count;
  }
  // The dy row after the last these read, a line per channel per block (or nothing).
  const int64_t after = iy + 1 + g.ph + 1;
  const char* ahead = after < g.H_out ? reinterpret_cast<const char*>(dyg + after * g.W_out) : nullptr;
  int64_t block = 0;
  for (const auto& blk : row.blocks) {
    const float* src = dyg + blk.p0 - 1;
    const bool share_left = ahead != nullptr && 64 * block < g.W_out * int64_t{sizeof(float)};
    const char* pf = share_left ? ahead + 64 * block : reinterpret_cast<const char*>(src + 1);
    blk.run_two(src, g.P(), rows, g.cout_g(), packed, di + blk.p0, g.HW(), g.W, pf);
    ++block;
  }
}

// Items of 2 x kRowsPerItem dx rows, each row's blocks per 16 input channels (8 with `pairs`, two
// rows at a time at stride 1 down while two are left); each block asks for a line per dy channel of
// the dy row after the last its row reads.
template <int S, bool pairs>
void backward_input_with(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  // The row's last column takes kernel column 0 of dy column W_out (none) at stride 1, and at
  // stride 2 where W is even.
  const InputRowBlocks<S, pairs> row(g.W, S == 1 || g.W % 2 == 0);
  const auto pack = pack_weights<false, pairs ? 8 : 16, pairs ? 2 : 1>;
  for_each_item(g, g.H, 2 * kRowsPerItem, w, pack, [&](const Item& it, const Item&, const float* packed) {
    const float* dyg = dy + (it.n * g.C_out + it.grp * cog) * g.P();
    for (int64_t iy = it.y0; iy < it.y1; ++iy) {
      if (pairs && g.sh == 1 && iy + 1 < it.y1) {  // rows iy and iy + 1 in one step
        input_two_rows(g, row, dyg, packed, dx + (it.n * g.C_in + it.grp * cig) * g.HW() + iy * g.W, iy);
        ++iy;
        continue;
      }
      InputRows rows;
      for (int ky = 0; ky < 3; ++ky) {  // dx row iy takes kernel row ky of dy row (iy + ph - ky) / sh where exact
        const int64_t e = iy + g.ph - ky;
        if (e < 0 || e % g.sh != 0 || e / g.sh >= g.H_out) continue;
        rows.dy[rows.count] = e / g.sh * g.W_out, rows.w[rows.count] = ky * 3 * kLanes, ++rows.count;
      }
      // The dy row after the last this one reads, a line per channel per block (or nothing).
      const int64_t after = floor_div(iy + g.ph, g.sh) + 1;
      const char* ahead = after < g.H_out ? reinterpret_cast<const char*>(dyg + after * g.W_out) : nullptr;
      int64_t block = 0;
      for (int64_t i0 = 0; i0 < cig; i0 += kLanes) {
        const float* wi = packed + i0 * cog * kTaps;
        float* di = dx + (it.n * g.C_in + it.grp * cig + i0) * g.HW() + iy * g.W;
        for (const auto& blk : row.blocks) {
          const float* src = dyg + floor_div(blk.p0 - 1, S);
          const bool share_left = ahead != nullptr && 64 * block < g.W_out * int64_t{sizeof(float)};
          const char* pf = share_left ? ahead + 64 * block : reinterpret_cast<const char*>(src + 1);
          blk.run(src, g.P(), rows, cog, wi, di + blk.p0, g.HW(), pf);
          ++block;
        }
      }
    }
  });
}

}  // namespace

// Narrower rows leave the blocks of 6 (and their overlaps) too much of the row: the other
// kernels sweep several rows at once.
constexpr int64_t kMinColumns = 12;

// 8 channels per group along the vectors: pairs of positions, at stride 1 across.
bool pairs_apply(const ConvGeometry& g, int64_t channels) { return channels == kLanes / 2 && g.sw == 1; }

bool applies_to_weight_gradient(const ConvGeometry& g) {
  const bool fits = weight_vectors(g) > 0 || (pairs_apply(g, g.cout_g()) && g.cin_g() % 8 == 0);
  return g.sh >= 1 && g.sh <= 2 && g.sw >= 1 && g.sw <= 2 && g.pw == 1 && fits;
}

bool applies(const ConvGeometry& g) {
  return g.pw == 1 && (g.cout_g() % kLanes == 0 || pairs_apply(g, g.cout_g())) && g.W_out >= kMinColumns;
}

bool applies_to_input_gradient(const ConvGeometry& g) {
  // At stride 2 with 16 dy channels per group (layer3) the transposition on the way out costs
  // what the broadcasts save: level with conv_grouped_strided.cpp's kernel there.
  const bool channels = g.cin_g() % kLanes == 0 && (g.sw == 1 || g.cout_g() >= 2 * kLanes);
  return g.pw == 1 && (channels || pairs_apply(g, g.cin_g())) && g.W >= kMinColumns;
}

void forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  if (pairs_apply(g, g.cout_g())) return forward_with<1, true>(g, x, w, b, y);
  const bool two = g.cout_g() % (2 * kLanes) == 0;  // two vectors of output channels per block
  if (g.sw == 2) return two ? forward_with<2, false, 2>(g, x, w, b, y) : forward_with<2, false>(g, x, w, b, y);
  return two ? forward_with<1, false, 2>(g, x, w, b, y) : forward_with<1, false>(g, x, w, b, y);
}

void backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
  if (pairs_apply(g, g.cin_g())) return backward_input_with<1, true>(g, dy, w, dx);
  if (g.sw == 2) return backward_input_with<2, false>(g, dy, w, dx);
  return backward_input_with<1, false>(g, dy, w, dx);
}

void backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
  if (weight_vectors(g) == 0) return backward_weight_pairs(g, dy, x, dw);
  const bool two = weight_vectors(g) == 2;
  if (g.sw == 2) return two ? backward_weight_with<2, 2>(g, dy, x, dw) : backward_weight_with<1, 2>(g, dy, x, dw);
  return two ? backward_weight_with<2, 1>(g, dy, x, dw) : backward_weight_with<1, 1>(g, dy, x, dw);
}

}  // namespace gndet::grouped::channels

#else  // no AVX-512: grouped::applies() is false, so nothing comes here

#include <stdexcept>

namespace gndet::grouped::channels {

bool applies(const ConvGeometry&) { return false; }
bool applies_to_input_gradient(const ConvGeometry&) { return false; }
bool applies_to_weight_gradient(const ConvGeometry&) { return false; }
void forward(const ConvGeometry&, const float*, const float*, const float*, float*) {
  throw std::logic_error("grouped::channels::forward: built without AVX-512");
}
void backward_input(const ConvGeometry&, const float*, const float*, float*) {
  throw std::logic_error("grouped::channels::backward_input: built without AVX-512");
}
void backward_weight(const ConvGeometry&, const float*, const float*, float*) {
  throw std::logic_error("grouped::channels::backward_weight: built without AVX-512");
}

}  // namespace gndet::grouped::channels

#endif
