// The grouped 3x3 convolutions with vectors along the channels: see conv_grouped_channels.h for
// what and why, and each section below for how.
#include "ops/cpu/conv_grouped_channels.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <vector>

#include "ops/cpu/conv_grouped_simd.h"

namespace gndet::grouped::channels {
namespace {

using namespace simd;

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
  for (int m = 0; m < 4; ++m) {
    const __m512 v01 = _mm512_maskz_shuffle_f32x4(all, a[m], a[4 + m], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 w01 = _mm512_maskz_shuffle_f32x4(all, a[m], a[4 + m], _MM_SHUFFLE(3, 1, 3, 1));
    const __m512 v23 = _mm512_maskz_shuffle_f32x4(all, a[8 + m], a[12 + m], _MM_SHUFFLE(2, 0, 2, 0));
    const __m512 w23 = _mm512_maskz_shuffle_f32x4(all, a[8 + m], a[12 + m], _MM_SHUFFLE(3, 1, 3, 1));
    b[m] = _mm512_maskz_shuffle_f32x4(all, v01, v23, _MM_SHUFFLE(2, 0, 2, 0));
    b[8 + m] = _mm512_maskz_shuffle_f32x4(all, v01, v23, _MM_SHUFFLE(3, 1, 3, 1));
    b[4 + m] = _mm512_maskz_shuffle_f32x4(all, w01, w23, _MM_SHUFFLE(2, 0, 2, 0));
    b[12 + m] = _mm512_maskz_shuffle_f32x4(all, w01, w23, _MM_SHUFFLE(3, 1, 3, 1));
  }
  for (int k = 0; k < kLanes; ++k) a[k] = b[k];
}

// ---- The weight gradient ----
//
// A block keeps 16 O output channels x 8 / O input channels x kernel columns 0-2 of one kernel
// row (24 sums, O = 1 or 2 vectors of output channels) while it sweeps a band's dy rows: per
// position O loads of dy (transposed: its channels side by side) and 24 multiply-adds, each with
// the x value of its tap broadcast from memory (column S j + kx - 1 of an x row). Standalone, best
// of 30 (2026-12-07): ResNeXt's layer3 3 x 3 / 2 weight gradient 187 -> 263, layer4's 180 -> 270
// GFLOP/s against the per-position kernel of conv_grouped_strided.cpp.

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

// One position: O vectors of dy (from d) times x at kernel columns [kx0, kx1) of 8 / O input
// channels (xp[c][col + kx]).
template <int O, int kx0, int kx1>
__attribute__((always_inline)) inline void weight_step(const float* d, const float* const (&xp)[8 / O], int64_t col,
                                                       __m512 (&acc)[O][8 / O][3]) {
  __m512 dv[O];
  for (int o = 0; o < O; ++o) dv[o] = _mm512_load_ps(d + kLanes * o);
  for (int c = 0; c < 8 / O; ++c) {
    for (int kx = kx0; kx < kx1; ++kx) {
      const __m512 xv = _mm512_set1_ps(xp[c][col + kx]);
      for (int o = 0; o < O; ++o) acc[o][c][kx] = _mm512_fmadd_ps(dv[o], xv, acc[o][c][kx]);
    }
  }
}

// The 24 sums of a block: dy transposed from d (ds floats per position), x from the x row of
// the block's first dy row of its first input channel (channels cs apart, rows xrs apart), over
// `rows` dy rows of `cols` positions; added in double to sums[c * sc + kx * so + 16 o + l].
// Position 0 has no kernel column 0 (the padding), and with `short_last` the last position no
// kernel column 2 (it would read column W). With `ask`, each row asks for the x row after it (the
// next dy row's, or the next band's first), a line per 16 columns it moves on.
template <int O, int S>
__attribute__((noinline)) void weight_block(const float* d, int64_t ds, const float* x, int64_t cs, int64_t xrs,
                                            int64_t rows, int64_t cols, bool short_last, double* sums, int64_t sc,
                                            int64_t so, bool ask) {
  constexpr int CI = 8 / O;
  constexpr int kLineSteps = kLanes / S;  // positions per cache line of x
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
      weight_step<O, 1, 2>(d, xp, -1, acc);
    } else {
      weight_step<O, 1, 3>(d, xp, -1, acc);
    }
    d += ds;
    for (int64_t j = 1; j < full_end; ++j, d += ds) {
      if (ask && j % kLineSteps == 1) {
        for (int c = 0; c < CI; ++c) _mm_prefetch(reinterpret_cast<const char*>(xp[c] + xrs + S * (j - 1) - 1), _MM_HINT_T1);
      }
      weight_step<O, 0, 3>(d, xp, S * j - 1, acc);
    }
    if (short_last && cols > 1) {
      weight_step<O, 0, 2>(d, xp, S * (cols - 1) - 1, acc);
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

// Output channel vectors per block: 2 (32 channels, 4 input channels) where they divide the
// group, else 1 (16 channels, 8 input channels); 0: the geometry does not fit.
int weight_vectors(const ConvGeometry& g) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  if (cog % 32 == 0 && cig % 4 == 0) return 2;
  if (cog % 16 == 0 && cig % 8 == 0) return 1;
  return 0;
}

// Per group (one thread's), per image, bands of dy rows transposed, then per block of output
// channels, input channels and kernel row one weight_block over the band; the group's sums (in
// double, sums[(i * 9 + ky * 3 + kx) * cog + o]) go to dw at the end.
template <int O, int S>
void backward_weight_with(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
  constexpr int CI = 8 / O;
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  const int64_t row_floats = g.W_out * cog;
  const int64_t rows_per_band = std::max<int64_t>(1, kDyBandBytes / (row_floats * int64_t{sizeof(float)}));
  const bool short_last = S * (g.W_out - 1) + 1 >= g.W;
  const int64_t sc = kTaps * cog;
#pragma omp parallel if (g.groups > 1)
  {
    std::vector<double> sums(static_cast<size_t>(cig * sc));
    const Scratch band(rows_per_band * row_floats);
    const auto [lo, hi] = thread_share(g.groups);
    for (int64_t grp = lo; grp < hi; ++grp) {
      std::fill(sums.begin(), sums.end(), 0.0);
      for (int64_t n = 0; n < g.N; ++n) {
        const float* dyg = dy + (n * g.C_out + grp * cog) * g.P();
        const float* xg = x + (n * g.C_in + grp * cig) * g.HW();
        for (int64_t y0 = 0; y0 < g.H_out; y0 += rows_per_band) {
          const int64_t y1 = std::min(g.H_out, y0 + rows_per_band);
          // The next band's dy asked for tile by tile (evicted first: 2-5% faster).
          transpose_dy_rows(dyg, g.P(), g.W_out, y0, y1, cog, band.get(), y1 < g.H_out ? rows_per_band * g.W_out : 0);
          for (int64_t o0 = 0; o0 < cog; o0 += kLanes * O) {
            for (int64_t i0 = 0; i0 < cig; i0 += CI) {
              for (int ky = 0; ky < 3; ++ky) {
                // dy rows [r0, r1) of the band read x rows sh r + ky - ph inside x.
                const int64_t r0 = std::clamp(ceil_div(g.ph - ky, g.sh), y0, y1);
                const int64_t r1 = std::clamp(floor_div(g.H - 1 + g.ph - ky, g.sh) + 1, r0, y1);
                if (r1 == r0) continue;
                // The first block of output channels asks for the x rows after its own (evicted
                // first: layer3's 3 x 3 / 2 183 -> 207-223 GFLOP/s).
                weight_block<O, S>(band.get() + (r0 - y0) * row_floats + o0, cog,
                                   xg + i0 * g.HW() + (g.sh * r0 + ky - g.ph) * g.W, g.HW(), g.sh * g.W, r1 - r0,
                                   g.W_out, short_last, sums.data() + i0 * sc + ky * 3 * cog + o0, sc, cog, o0 == 0);
              }
            }
          }
        }
      }
      float* dwg = dw + grp * cog * cig * kTaps;
      for (int64_t o = 0; o < cog; ++o) {
        for (int64_t i = 0; i < cig; ++i) {
          for (int t = 0; t < kTaps; ++t) dwg[(o * cig + i) * kTaps + t] = static_cast<float>(sums[(i * kTaps + t) * cog + o]);
        }
      }
    }
  }
}

}  // namespace

bool applies_to_weight_gradient(const ConvGeometry& g) {
  return g.sh >= 1 && g.sh <= 2 && g.sw >= 1 && g.sw <= 2 && g.pw == 1 && weight_vectors(g) > 0;
}

void backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
  const bool two = weight_vectors(g) == 2;
  if (g.sw == 2) return two ? backward_weight_with<2, 2>(g, dy, x, dw) : backward_weight_with<1, 2>(g, dy, x, dw);
  return two ? backward_weight_with<2, 1>(g, dy, x, dw) : backward_weight_with<1, 1>(g, dy, x, dw);
}

}  // namespace gndet::grouped::channels

#endif
