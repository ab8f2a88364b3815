// The grouped 3 x 3 convolutions at stride 2 with one column of padding, read straight from the
// tensors: see conv_grouped_strided.h for what and why, and each section below for how.
#include "ops/cpu/conv_grouped_strided.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

#include "ops/cpu/conv_grouped_simd.h"
#include "ops/cpu/stride2.h"

namespace gndet::grouped::strided {
namespace {

using namespace simd;

// ---- The forward ----
//
// Output column j of kernel column kx reads x column 2 j + kx - 1: the even phase of the row from
// column kx - 1. Each tap loads the 32 columns behind 16 outputs and picks every second with one
// vpermt2ps, so nothing is copied and no band leaves L1: per tap, V shuffles feed 8 x V
// multiply-adds (8 output channels per block, so the shuffles are an eighth of the multiply-adds;
// with 4 they were a quarter). The band copy it replaces made layer3's strided forward 1.3x
// slower, layer2's 1.6x (the band did not fit L1, and x was read twice).
constexpr int kStridedOut = 8;

// The taps of one output row that read inside x: where each reads relative to the kernel's first
// such row at the block's first output column (kernel column kx: the even phase of the row from
// column kx - 1), and the lanes of a vector's two loads inside the row (from column at + kx - 1
// and 16 further on, at = 32 x the vector's index) for the row's first vector (`head`) and its
// last (`lo`, `hi`). The masks are read from here as the block uses them (load_mask), so they hold
// no mask registers for the length of the block.
struct StridedTaps {
  int count = 0;
  int64_t offset[kTaps];
  __mmask16 head[kTaps], lo[kTaps], hi[kTaps];
  // Kernel rows [0, rows) of x rows W floats apart; the row's last vector starts at column `last`.
  StridedTaps(int rows, int64_t W, int64_t last) {
    for (int r = 0; r < rows; ++r) {
      for (int kx = 0; kx < 3; ++kx, ++count) {
        offset[count] = (r * W + kx - 1) * int64_t{sizeof(float)};
        head[count] = lanes_within(kx - 1, 0, W);
        lo[count] = lanes_within(last + kx - 1, 0, W), hi[count] = lanes_within(last + kx - 1 + kLanes, 0, W);
      }
    }
  }
};

// 8 output channels (os apart) x V vectors of one output row: out = bias + the sum over `cin`
// source channels (cs apart) and the taps (weights packed by pack_weights<true, 8>, the 8
// channels' side by side so that the broadcasts read one base pointer (8 pointers kept the
// general registers spilling): w[(c * 9 + t) * 8 + o] for the t-th tap, w from the first kernel
// row that reads inside x). The block's first
// vector is the row's first (`head`) or its last the row's last (`tail`): their loads go under
// the taps' masks. Meanwhile each tap asks for one cache line of x from prefetch + c cs on
// (the next output row's; prefetches never fault). Not inlined: GCC then allocates the 24
// accumulators to registers as it does not inside the caller's loops.
template <int V, bool head, bool tail>
__attribute__((noinline)) void strided_block(const float* src, int64_t cs, int64_t cin, const StridedTaps& taps,
                                             const float* w, const float* bias, float* out, int64_t os,
                                             __mmask16 last, const char* prefetch) {
  const __m512i pick_even = cpu::pick_even_lanes();
  __m512 acc[kStridedOut][V];
  for (int o = 0; o < kStridedOut; ++o) {
    const __m512 init = bias != nullptr ? _mm512_set1_ps(bias[o]) : _mm512_setzero_ps();
    for (int v = 0; v < V; ++v) acc[o][v] = init;
  }
  for (int64_t c = 0; c < cin; ++c) {
    // A line per tap: a loop of its own here had GCC store the accumulators at every tap.
    const char* ahead = prefetch + c * cs * int64_t{sizeof(float)};
    const char* s = reinterpret_cast<const char*>(src + c * cs);
    const float* wc = w + c * kTaps * kStridedOut;
    for (int t = 0; t < taps.count; ++t) {
      const float* p = reinterpret_cast<const float*>(s + taps.offset[t]);
      _mm_prefetch(ahead + 64 * t, _MM_HINT_T1);
      __m512 in[V];
      for (int v = 0; v < V; ++v) {
        const float* at = p + 2 * kLanes * v;
        __m512 lo, hi;
        if (tail && v == V - 1) {
          lo = masked_load(load_mask(&taps.lo[t]), at), hi = masked_load(load_mask(&taps.hi[t]), at + kLanes);
        } else {
          lo = head && v == 0 ? masked_load(load_mask(&taps.head[t]), at) : _mm512_loadu_ps(at);
          hi = _mm512_loadu_ps(at + kLanes);
        }
        in[v] = _mm512_permutex2var_ps(lo, pick_even, hi);
      }
      const float* wt = wc + t * kStridedOut;
      for (int o = 0; o < kStridedOut; ++o) {
        const __m512 wv = _mm512_set1_ps(wt[o]);
        for (int v = 0; v < V; ++v) acc[o][v] = _mm512_fmadd_ps(wv, in[v], acc[o][v]);
      }
    }
  }
  for (int o = 0; o < kStridedOut; ++o) {
    float* d = out + o * os;
    for (int v = 0; v < V; ++v) {
      if (tail && v == V - 1) {
        _mm512_mask_storeu_ps(d + v * kLanes, last, acc[o][v]);
      } else {
        _mm512_storeu_ps(d + v * kLanes, acc[o][v]);
      }
    }
  }
}

// Output rows [y0, y1) of one (image, group) by strided_block: xg is the group's channel 0, packed
// its weights (pack_weights<true, 8>), yg its output channel 0. The blocks of a row share out, one line
// per tap, the x rows that the next output row adds (for the last row, the `next_rows` rows from
// `next_first` that the next item's first row reads): an even trickle, where a burst of
// prefetches before each block stalled it.
void strided_rows(const ConvGeometry& g, const float* xg, const float* packed, const float* bg, float* yg, int64_t y0,
                  int64_t y1, const float* next_first, int64_t next_rows) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  const int64_t vectors = ceil_div(g.W_out, kLanes), blocks_per_row = ceil_div(vectors, 3) * (cog / kStridedOut);
  const __mmask16 last = lanes_mask(g.W_out - (vectors - 1) * kLanes);
  for (int64_t oy = y0; oy < y1; ++oy) {
    const int64_t top = oy * 2 - g.ph;  // the x row kernel row 0 reads
    const int64_t lo = std::max<int64_t>(0, -top), hi = std::min<int64_t>(3, g.H - top);
    const StridedTaps taps(static_cast<int>(hi - lo), g.W, (vectors - 1) * 2 * kLanes);
    const float* ahead = next_first;  // the x rows the next output row reads and this one does not
    int64_t ahead_rows = next_rows;
    if (oy + 1 < y1) {
      const int64_t from = std::max<int64_t>(0, top + 3), to = std::min<int64_t>(g.H, top + 5);
      ahead = xg + from * g.W, ahead_rows = std::max<int64_t>(0, to - from);
    }
    // Per channel, the lines they span; block b of the row asks for those from b x share on.
    const uintptr_t span = reinterpret_cast<uintptr_t>(ahead) & ~uintptr_t{63};
    const int64_t span_lines =
        ahead_rows > 0 ? ceil_div(static_cast<int64_t>(reinterpret_cast<uintptr_t>(ahead + ahead_rows * g.W) - span), 64) : 0;
    const int64_t share = ceil_div(span_lines, blocks_per_row);
    int64_t block = 0;
    for (int64_t o = 0; o < cog; o += kStridedOut) {
      for (int64_t v0 = 0; v0 < vectors; v0 += 3, ++block) {
        const float* s = xg + (top + lo) * g.W + 2 * kLanes * v0;
        // Nothing left to ask for: the block's own x (in cache already) instead.
        const char* pf = block * share < span_lines ? reinterpret_cast<const char*>(span + 64 * block * share)
                                                    : reinterpret_cast<const char*>(s);
        const float* w = packed + o * cig * kTaps + 3 * kStridedOut * lo;
        const float* b = bg != nullptr ? bg + o : nullptr;
        float* d = yg + (o * g.H_out + oy) * g.W_out + kLanes * v0;
        const int64_t os = g.P(), V = std::min<int64_t>(3, vectors - v0);
        const bool head = v0 == 0, tail = v0 + V == vectors;
        switch (V * 4 + head * 2 + tail) {
          case 12: strided_block<3, false, false>(s, g.HW(), cig, taps, w, b, d, os, last, pf); break;
          case 13: strided_block<3, false, true>(s, g.HW(), cig, taps, w, b, d, os, last, pf); break;
          case 14: strided_block<3, true, false>(s, g.HW(), cig, taps, w, b, d, os, last, pf); break;
          case 15: strided_block<3, true, true>(s, g.HW(), cig, taps, w, b, d, os, last, pf); break;
          case 9: strided_block<2, false, true>(s, g.HW(), cig, taps, w, b, d, os, last, pf); break;
          case 11: strided_block<2, true, true>(s, g.HW(), cig, taps, w, b, d, os, last, pf); break;
          case 5:  // a row's last vector alone
          case 7:  // a row of one vector: its tail masks (from column 0) keep column -1 out as well
            strided_block<1, false, true>(s, g.HW(), cig, taps, w, b, d, os, last, pf);
            break;
          default: throw std::logic_error("strided_rows: no block for this shape");
        }
      }
    }
  }
}

// ---- The input gradient ----
//
// dx column 2 b takes kernel column 1 of dy column b; column 2 b + 1 takes kernel column 2 of dy
// column b and kernel column 0 of column b + 1. A block sums both phases of 16 x V column pairs
// of one dx row from dy's own rows: per dy channel and kernel row, V vectors from column b and V
// from b + 1 (loads one float apart, nothing to pick), 3 weights per dx channel, and the two
// phases are interleaved in registers as they are stored. What it replaces: a padded band of dy,
// a row per column phase (4 output channels of one phase per block, 1-4 taps deep) and a pass
// that interleaved the two into dx. Standalone, best of 30, 3 alternated rounds (2026-12-07):
// layer2's 3 x 3 / 2 input gradient 127 -> 210, layer3's 164 -> 223, layer4's 176 -> 230 GFLOP/s.
constexpr int kStridedIn = 4;  // dx channels per block: x 2 phases x 3 vectors = 24 accumulators

// The kernel rows that reach one dx row: where each one's dy row starts (bytes from the block's
// source) and where its weights start among a dy channel's (pack_weights<false, 4>).
struct StridedInputRows {
  int count = 0;
  int64_t offset[2];
  int64_t weight[2];
};

// The masks of a row's last block: the lanes of its last vector inside dy's row from column b
// (`from_b`) and from b + 1 (`from_next`), read by load_mask where they are used, and of the two
// dx vectors it stores (`store_lo`, `store_hi`; a packed tail's 8 dx columns: `store_lo`).
struct StridedInputMasks {
  __mmask16 from_b, from_next, store_lo, store_hi;
};

// How a block's last columns are summed: all V vectors whole (`none`), the last one under the
// masks (`masked`), or V whole vectors and then the row's last 1-4 dy columns of all 4 dx
// channels in one vector (`packed`), lane 4 k + i for column k of channel i. At layer3's 84
// columns (5 vectors and 4) the masked tail spent 12 of every 96 lanes on nothing; packed, its
// 3 x 3 / 2 input gradient went 0.59 -> 0.63 of the fp32 peak (medians of 5 alternated
// bench/cpu_layers runs, 2026-12-07).
enum class Tail { none, masked, packed };

// 4 floats at p under m (the lanes past a row's end are not read), each repeated for the 4
// channels of a packed tail: lanes 4 k + i = p[k].
__attribute__((always_inline)) inline __m512 columns_for_channels(__mmask16 m, const float* p) {
  __m128 v;
  asm("vmovups (%1), %0%{%2%}%{z%}" : "=v"(v) : "r"(p), "Yk"(m));
  // The zero-masking forms with every lane kept: the plain ones' undefined merge source makes
  // GCC 12 warn (maybe-uninitialized).
  const __m512i repeat = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  return _mm512_maskz_permutexvar_ps(0xFFFF, repeat, _mm512_zextps128_ps512(v));
}

// 4 dx channels' weights (w[i], i < 4) for the lanes of a packed tail: lane 4 k + i = w[i].
__attribute__((always_inline)) inline __m512 weights_for_columns(const float* w) {
  return _mm512_maskz_broadcast_f32x4(0xFFFF, _mm_load_ps(w));
}

// 4 dx channels (os apart) x 16 V column pairs of one dx row (and the row's last columns, `tail`):
// the sum over `cout` dy channels (cs apart) and `rows`, weights packed by pack_weights<false, 4>
// (w[(c * 9 + ky * 3 + kx) * 4 + i]). A masked or packed tail is the row's last: its loads and
// stores go under `masks`. Not inlined, as strided_block.
template <int V, Tail tail>
__attribute__((noinline)) void strided_input_block(const float* src, int64_t cs, int64_t cout,
                                                   const StridedInputRows& rows, const float* w, float* out,
                                                   int64_t os, const StridedInputMasks& masks, const char* prefetch) {
  constexpr bool masked = tail == Tail::masked, packed = tail == Tail::packed;
  __m512 even[kStridedIn][V > 0 ? V : 1], odd[kStridedIn][V > 0 ? V : 1];
  for (int i = 0; i < kStridedIn; ++i) {
    for (int v = 0; v < V; ++v) even[i][v] = odd[i][v] = _mm512_setzero_ps();
  }
  __m512 even_tail = _mm512_setzero_ps(), odd_tail = _mm512_setzero_ps();  // lanes 4 k + i (packed)
  for (int64_t c = 0; c < cout; ++c) {
    const char* s = reinterpret_cast<const char*>(src + c * cs);
    const float* wc = w + c * kTaps * kStridedIn;
    const char* ahead = prefetch + c * cs * int64_t{sizeof(float)};
    _mm_prefetch(ahead, _MM_HINT_T1);
    _mm_prefetch(ahead + 64, _MM_HINT_T1);
    for (int t = 0; t < rows.count; ++t) {
      const float* p = reinterpret_cast<const float*>(s + rows.offset[t]);
      const float* wt = wc + rows.weight[t];  // [kx][i]
      __m512 in[V > 0 ? V : 1];
      for (int v = 0; v < V; ++v) {
        const float* at = p + kLanes * v;
        in[v] = masked && v == V - 1 ? masked_load(load_mask(&masks.from_b), at) : _mm512_loadu_ps(at);
      }
      for (int i = 0; i < kStridedIn; ++i) {
        const __m512 w1 = _mm512_set1_ps(wt[kStridedIn + i]), w2 = _mm512_set1_ps(wt[2 * kStridedIn + i]);
        for (int v = 0; v < V; ++v) {
          even[i][v] = _mm512_fmadd_ps(w1, in[v], even[i][v]);
          odd[i][v] = _mm512_fmadd_ps(w2, in[v], odd[i][v]);
        }
      }
      for (int v = 0; v < V; ++v) {
        const float* at = p + kLanes * v + 1;
        in[v] = masked && v == V - 1 ? masked_load(load_mask(&masks.from_next), at) : _mm512_loadu_ps(at);
      }
      for (int i = 0; i < kStridedIn; ++i) {
        const __m512 w0 = _mm512_set1_ps(wt[i]);
        for (int v = 0; v < V; ++v) odd[i][v] = _mm512_fmadd_ps(w0, in[v], odd[i][v]);
      }
      if constexpr (packed) {
        const float* at = p + kLanes * V;
        const __m512 from_b = columns_for_channels(load_mask(&masks.from_b), at);
        const __m512 from_next = columns_for_channels(load_mask(&masks.from_next), at + 1);
        even_tail = _mm512_fmadd_ps(weights_for_columns(wt + kStridedIn), from_b, even_tail);
        odd_tail = _mm512_fmadd_ps(weights_for_columns(wt + 2 * kStridedIn), from_b, odd_tail);
        odd_tail = _mm512_fmadd_ps(weights_for_columns(wt), from_next, odd_tail);
      }
    }
  }
  const __m512i lo = cpu::interleave_low_lanes();
  const __m512i hi = cpu::interleave_high_lanes();
  for (int i = 0; i < kStridedIn; ++i) {
    float* d = out + i * os;
    for (int v = 0; v < V; ++v) {
      const __m512 first = _mm512_permutex2var_ps(even[i][v], lo, odd[i][v]);
      const __m512 second = _mm512_permutex2var_ps(even[i][v], hi, odd[i][v]);
      if (masked && v == V - 1) {
        _mm512_mask_storeu_ps(d + 2 * kLanes * v, masks.store_lo, first);
        _mm512_mask_storeu_ps(d + 2 * kLanes * v + kLanes, masks.store_hi, second);
      } else {
        _mm512_storeu_ps(d + 2 * kLanes * v, first);
        _mm512_storeu_ps(d + 2 * kLanes * v + kLanes, second);
      }
    }
  }
  if constexpr (packed) {
    // Channels i and i + 1's 8 dx columns (even and odd phase alternating) in one vector.
    const __m512i two_channels = _mm512_setr_epi32(0, 16, 4, 20, 8, 24, 12, 28, 1, 17, 5, 21, 9, 25, 13, 29);
    for (int i = 0; i < kStridedIn; i += 2) {
      const __m512i pick = _mm512_add_epi32(two_channels, _mm512_set1_epi32(i));
      const __m512 both = _mm512_permutex2var_ps(even_tail, pick, odd_tail);
      _mm512_mask_storeu_ps(out + i * os + 2 * kLanes * V, masks.store_lo, both);
      _mm512_mask_storeu_ps(out + (i + 1) * os + 2 * kLanes * V - 8, static_cast<__mmask16>(masks.store_lo << 8), both);
    }
  }
}

// dx rows [y0, y1) of one (image, group) by strided_input_block: dyg is the group's dy channel 0,
// packed its weights (pack_weights<false, 4>), dxg its dx channel 0. The blocks of a row ask for
// the dy row after the last one it reads (past the plane's last, from next_first: the next
// item's first), 2 lines per channel each (dy and dx evicted before each call: 2-9% faster), and
// for the dx lines the next block writes: each store otherwise waits for its line's read for
// ownership when the block ends (layer2's 3 x 3 / 2 input gradient 0.42 -> 0.50 of the fp32
// peak, layer3's 0.52 -> 0.59: medians of 6 alternated bench/cpu_layers runs, 2026-12-07).
void strided_input_rows(const ConvGeometry& g, const float* dyg, const float* packed, float* dxg, int64_t y0,
                        int64_t y1, const float* next_first) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  const int64_t vectors = ceil_div(g.W_out, kLanes), last = (vectors - 1) * kLanes;
  const StridedInputMasks masks{lanes_mask(g.W_out - last), lanes_mask(g.W_out - last - 1), lanes_mask(g.W - 2 * last),
                                lanes_mask(g.W - 2 * last - kLanes)};
  const bool packs_tail = g.W_out - last <= 4;  // the row's last vector has 1-4 columns: Tail::packed
  for (int64_t iy = y0; iy < y1; ++iy) {
    StridedInputRows rows;
    for (int ky = 0; ky < 3; ++ky) {  // dx row iy takes kernel row ky of dy row (iy + ph - ky) / 2 where exact
      const int64_t e = iy + g.ph - ky;
      if (e < 0 || e % 2 != 0 || e / 2 >= g.H_out) continue;
      rows.offset[rows.count] = e / 2 * g.W_out * int64_t{sizeof(float)}, rows.weight[rows.count] = ky * 3 * kStridedIn;
      ++rows.count;
    }
    // The dy row after the last this one reads (or the next item's first), 2 lines per channel per block.
    const int64_t after = floor_div(iy + g.ph, 2) + 1;
    const char* ahead = reinterpret_cast<const char*>(after < g.H_out ? dyg + after * g.W_out : next_first);
    // The dx lines that block (i, v0) of this row writes, asked for to be written.
    auto write_ahead = [&](int64_t i, int64_t v0) {
      if (i < cig) {
        const int64_t from = 2 * kLanes * v0;
        prefetch_for_writing(dxg + (i * g.H + iy) * g.W + from, g.HW(), kStridedIn, std::min<int64_t>(6 * kLanes, g.W - from));
      }
    };
    int64_t block = 0;
    for (int64_t i = 0; i < cig; i += kStridedIn) {
      const float* w = packed + i * cog * kTaps;
      for (int64_t v0 = 0; v0 < vectors; v0 += 3, ++block) {
        const float* s = dyg + kLanes * v0;
        const bool share_left = ahead != nullptr && 128 * block < g.W_out * int64_t{sizeof(float)};
        const char* pf = share_left ? ahead + 128 * block : reinterpret_cast<const char*>(s);
        float* d = dxg + (i * g.H + iy) * g.W + 2 * kLanes * v0;
        // The block's vectors, the row's last (masked or packed) among them where it is the last block.
        const int64_t V = std::min<int64_t>(3, vectors - v0);
        const int tail = v0 + V < vectors ? 0 : packs_tail ? 1 : 2;
        // Each block asks for the lines the next one writes (the row's first for its own too).
        if (block == 0) write_ahead(i, v0);
        v0 + 3 < vectors ? write_ahead(i, v0 + 3) : write_ahead(i + kStridedIn, 0);
        switch (V * 4 + tail) {
          case 12: strided_input_block<3, Tail::none>(s, g.P(), cog, rows, w, d, g.HW(), masks, pf); break;
          case 14: strided_input_block<3, Tail::masked>(s, g.P(), cog, rows, w, d, g.HW(), masks, pf); break;
          case 10: strided_input_block<2, Tail::masked>(s, g.P(), cog, rows, w, d, g.HW(), masks, pf); break;
          case 6: strided_input_block<1, Tail::masked>(s, g.P(), cog, rows, w, d, g.HW(), masks, pf); break;
          case 13: strided_input_block<2, Tail::packed>(s, g.P(), cog, rows, w, d, g.HW(), masks, pf); break;
          case 9: strided_input_block<1, Tail::packed>(s, g.P(), cog, rows, w, d, g.HW(), masks, pf); break;
          case 5: strided_input_block<0, Tail::packed>(s, g.P(), cog, rows, w, d, g.HW(), masks, pf); break;
          default: throw std::logic_error("strided_input_rows: no block for this shape");
        }
      }
    }
  }
}

// ---- The weight gradient ----
//
// Kernel column kx of dy column j reads x column 2 j + kx - 1: per 16 positions of a dy row, the
// 32 columns of x from 2 j give column 1 (their even lanes) and column 2 (their odd lanes), the
// 32 from 2 j - 1 column 0 (their even lanes): 4 loads and 3 vpermt2ps for 3 x vectors, each
// multiplied by 8 output channels' dy. A block keeps the 24 sums of 8 output channels x 3 kernel
// columns of one input channel and kernel row while it sweeps a band of rows whose dy (8
// channels, packed once per band) stays in L1 across the band's blocks; x is not copied. The
// padded x band it replaces was copied for every band and swept from L2 by every block (4 output
// x 2 input channels each). Standalone, best of 30, 3 alternated rounds (2026-12-07): layer2's
// 3 x 3 / 2 weight gradient 116 -> 161, layer3's 156 -> 177, layer4's 172 level (GFLOP/s). With
// every load of every step masked (one code path for a row's ends and its inside) it was 1.2x
// slower; the inside's loads are now plain and the masks stay in mask registers.

// dy's rows of 8 output channels, packed for strided_weight_block: element (r, j, o, l) is
// dy[o][y0 + r][16 j + l], zero past the row's end, so that a step reads its 8 channels' vectors
// from one pointer and never masks them (with 8 pointers the general registers spilled).
void pack_dy_rows(const float* d, int64_t ds, int64_t W_out, int64_t y0, int64_t y1, int64_t vectors, float* out) {
  for (int64_t r = y0; r < y1; ++r) {
    for (int64_t j = 0; j < vectors; ++j) {
      const __mmask16 keep = lanes_within(kLanes * j, 0, W_out);
      for (int o = 0; o < kStridedOut; ++o, out += kLanes) {
        _mm512_store_ps(out, _mm512_maskz_loadu_ps(keep, d + o * ds + r * W_out + kLanes * j));
      }
    }
  }
}

// The lanes of x's loads inside a row (W columns) for a row's first vector (`head`: column -1 of
// the load from column 2 j - 1 = -1) and its last (j = last: the loads from 32 j - 1, 16 on, 32 j
// and 16 on).
struct StridedWeightMasks {
  __mmask16 head, minus, minus_hi, even, even_hi;
  StridedWeightMasks(int64_t last, int64_t W)
      : head(lanes_within(-1, 0, W)), minus(lanes_within(2 * kLanes * last - 1, 0, W)),
        minus_hi(lanes_within(2 * kLanes * last - 1 + kLanes, 0, W)), even(lanes_within(2 * kLanes * last, 0, W)),
        even_hi(lanes_within(2 * kLanes * last + kLanes, 0, W)) {}
};

enum class Edge { none, head, tail };

// One vector of a row: 8 channels' dy (packed, d[16 o + l]) times x's kernel columns 0-2 from x
// (x[2 l + kx - 1]). A row's first vector loads its column -1 under m.head; its last loads x
// under the rest of m (its dy is zero past the row).
template <Edge edge>
__attribute__((always_inline)) inline void strided_weight_step(const float* d, const float* x,
                                                               const StridedWeightMasks& m,
                                                               __m512 (&acc)[kStridedOut][3]) {
  const __m512i pick_even = cpu::pick_even_lanes();
  const __m512i pick_odd = cpu::pick_odd_lanes();
  __m512 a, b, e, f;
  if constexpr (edge == Edge::tail) {
    a = masked_load(m.minus, x - 1), b = masked_load(m.minus_hi, x - 1 + kLanes);
    e = masked_load(m.even, x), f = masked_load(m.even_hi, x + kLanes);
  } else {
    a = edge == Edge::head ? masked_load(m.head, x - 1) : _mm512_loadu_ps(x - 1);
    b = _mm512_loadu_ps(x - 1 + kLanes), e = _mm512_loadu_ps(x), f = _mm512_loadu_ps(x + kLanes);
  }
  const __m512 xv[3] = {_mm512_permutex2var_ps(a, pick_even, b), _mm512_permutex2var_ps(e, pick_even, f),
                        _mm512_permutex2var_ps(e, pick_odd, f)};
  for (int o = 0; o < kStridedOut; ++o) {
    __m512 dv = _mm512_load_ps(d + kLanes * o);
    asm("" : "+v"(dv));  // in a register: else GCC 12 folds the load into each of the 3 multiply-adds
    for (int kx = 0; kx < 3; ++kx) acc[o][kx] = _mm512_fmadd_ps(dv, xv[kx], acc[o][kx]);
  }
}

// Cache lines to ask for into L2, the next band's x rows [x, x_end) first, then the next pack's
// dy rows [dy, dy_end), one at a time as a block's steps go by.
struct LinesAhead {
  const char *x = nullptr, *x_end = nullptr, *dy = nullptr, *dy_end = nullptr;
  __attribute__((always_inline)) void next() {
    if (x < x_end) {
      _mm_prefetch(x, _MM_HINT_T1), x += 64;
    } else if (dy < dy_end) {
      _mm_prefetch(dy, _MM_HINT_T1), dy += 64;
    }
  }
};

// The 24 sums of 8 output channels (dy packed by pack_dy_rows) x kernel columns 0-2 of one input
// channel and kernel row (x from row x, rows xrs apart) over `rows` rows of `vectors` vectors,
// added to sums[o * so + 16 kx] (stored, the group's `first` time). Meanwhile two lines of
// `ahead` per inner step are asked for. Not inlined, as strided_block.
__attribute__((noinline)) void strided_weight_block(const float* d, const float* x, int64_t xrs, int64_t rows,
                                                    int64_t vectors, const StridedWeightMasks& masks, bool first,
                                                    float* sums, int64_t so, const LinesAhead& lines_ahead) {
  __m512 acc[kStridedOut][3];
  for (int o = 0; o < kStridedOut; ++o) {
    for (int kx = 0; kx < 3; ++kx) acc[o][kx] = _mm512_setzero_ps();
  }
  const StridedWeightMasks m = masks;  // in mask registers for the block's length
  // Field by field: a copy as one vector load of what the caller stored as parts waited ~20 cycles
  // (the store could not be forwarded).
  LinesAhead ahead;
  ahead.x = lines_ahead.x, ahead.x_end = lines_ahead.x_end, ahead.dy = lines_ahead.dy, ahead.dy_end = lines_ahead.dy_end;
  const int64_t step = kStridedOut * kLanes;
  for (int64_t r = 0; r < rows; ++r, x += xrs) {
    if (vectors == 1) {
      strided_weight_step<Edge::tail>(d, x, m, acc);  // its tail masks keep column -1 out as well
      d += step;
      continue;
    }
    strided_weight_step<Edge::head>(d, x, m, acc);
    d += step;
    for (int64_t j = 1; j < vectors - 1; ++j, d += step) {
      ahead.next(), ahead.next();
      strided_weight_step<Edge::none>(d, x + 2 * kLanes * j, m, acc);
    }
    strided_weight_step<Edge::tail>(d, x + 2 * kLanes * (vectors - 1), m, acc);
    d += step;
  }
  for (int o = 0; o < kStridedOut; ++o) {
    for (int kx = 0; kx < 3; ++kx) {
      float* s = sums + o * so + kLanes * kx;
      _mm512_store_ps(s, first ? acc[o][kx] : _mm512_add_ps(_mm512_load_ps(s), acc[o][kx]));
    }
  }
}

// A band's packed dy rows: 24 KB made layer4's weight gradient 170 -> 178 GFLOP/s against 16 KB;
// 32 KB was no faster, and layer2's (memory-bound) the same at all three (standalone, alternated
// rounds, 2026-12-07).
constexpr int64_t kStridedDyBytes = int64_t{24} << 10;

}  // namespace

bool applies(const ConvGeometry& g) { return g.sh == 2 && g.sw == 2 && g.pw == 1 && g.cout_g() % kStridedOut == 0; }

// The forward: items of kRowsPerItem output rows; during an item's last row, the next item's
// first row's x rows are asked for.
void forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  for_each_item(g, g.H_out, kRowsPerItem, w, pack_weights<true, kStridedOut>, [&](const Item& it, const Item& next, const float* packed) {
    const float* next_first = nullptr;
    int64_t next_rows = 0;
    if (next.n >= 0) {
      const int64_t top = next.y0 * 2 - g.ph, from = std::max<int64_t>(0, top);
      next_first = x + (next.n * g.C_in + next.grp * cig) * g.HW() + from * g.W;
      next_rows = std::max<int64_t>(0, std::min(g.H, top + 3) - from);
    }
    strided_rows(g, x + (it.n * g.C_in + it.grp * cig) * g.HW(), packed, b != nullptr ? b + it.grp * cog : nullptr,
                 y + (it.n * g.C_out + it.grp * cog) * g.P(), it.y0, it.y1, next_first, next_rows);
  });
}

// The input gradient: items of 2 x kRowsPerItem dx rows; the next item's first dy row asked for
// during an item's last dx row.
void backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  for_each_item(g, g.H, 2 * kRowsPerItem, w, pack_weights<false, kStridedIn>,
                [&](const Item& it, const Item& next, const float* packed) {
                  const float* next_first = nullptr;
                  if (next.n >= 0) {
                    const int64_t first_row = std::max<int64_t>(0, floor_div(next.y0 + g.ph - 2, 2));
                    next_first = dy + (next.n * g.C_out + next.grp * cog) * g.P() + first_row * g.W_out;
                  }
                  strided_input_rows(g, dy + (it.n * g.C_out + it.grp * cog) * g.P(), packed,
                                     dx + (it.n * g.C_in + it.grp * cig) * g.HW(), it.y0, it.y1, next_first);
                });
}

// The weight gradient: per group (one thread's), per image, bands of dy rows whose 8 channels'
// packed rows take kStridedDyBytes (L1, beside x's rows of one channel), for every block of 8
// output channels, input channel and kernel row. While a band's blocks run they ask for what the
// next pack of dy reads (the 8 channels' rows, a share per block) and, in the band's first block
// of channels, the x rows the next band adds (a third of channel i's per kernel row), two lines
// per step, and the next band is the thread's next one, in the next image or group too. Without
// them the next band's loads waited on L3 or memory: asking for x alone took layer2's 3 x 3 / 2
// weight gradient 92 -> 119 GFLOP/s (x evicted before each call); adding dy (the pack's loads
// had been 14% of the time), 0.48 -> 0.56 of the fp32 peak (median of 5 alternated
// bench/cpu_layers runs, 2026-12-07; its memory roofline 0.58).
void backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
  const int64_t cig = g.cin_g(), cog = g.cout_g(), block = cog * cig * kTaps;
  const int64_t vectors = ceil_div(g.W_out, kLanes), row_floats = vectors * kStridedOut * kLanes;
  const int64_t rows_per_band = std::max<int64_t>(1, kStridedDyBytes / (row_floats * int64_t{sizeof(float)}));
  const StridedWeightMasks masks(vectors - 1, g.W);
  const int64_t blocks_per_pack = cig * 3;
  const auto bytes = [](const float* p) { return reinterpret_cast<const char*>(p); };
#pragma omp parallel if (g.groups > 1)
  {
    const Scratch lanes(block * kLanes);  // the group's sums, 16 lanes per weight (o, i, tap)
    const Scratch packed(rows_per_band * row_floats);
    // Block b (= 3 i + ky) of a pack asks for bytes [from, to) of the next pack's dy channel
    // `channel` (the 8 channels' rows, `span` bytes each, shared out evenly); kept for the span
    // of the last pack (a band's, unless it ends the plane), so that no block divides.
    struct DyShare {
      int64_t channel, from, to;
    };
    std::vector<DyShare> shares(blocks_per_pack);
    int64_t shares_span = -1;
    const auto dy_shares = [&](int64_t span) {
      if (span != shares_span) {
        for (int64_t b = 0; b < blocks_per_pack; ++b) {
          const int64_t c = b * kStridedOut / blocks_per_pack;
          const int64_t b_lo = ceil_div(c * blocks_per_pack, kStridedOut);
          const int64_t parts = ceil_div((c + 1) * blocks_per_pack, kStridedOut) - b_lo;
          shares[b] = {c, span * (b - b_lo) / parts, span * (b + 1 - b_lo) / parts};
        }
        shares_span = span;
      }
      return shares.data();
    };
    const auto [lo, hi] = thread_share(g.groups);
    for (int64_t grp = lo; grp < hi; ++grp) {
      for (int64_t n = 0; n < g.N; ++n) {
        for (int64_t y0 = 0; y0 < g.H_out; y0 += rows_per_band) {
          const int64_t y1 = std::min(g.H_out, y0 + rows_per_band);
          // The thread's next band: (next_grp, next_n) rows [next_y0, next_y1), or none.
          int64_t next_grp = grp, next_n = n, next_y0 = y1;
          if (y1 == g.H_out) next_y0 = 0, ++next_n;
          if (next_n == g.N) next_n = 0, ++next_grp;
          const bool has_next = next_grp < hi;
          const int64_t next_y1 = std::min(g.H_out, next_y0 + rows_per_band);
          const bool first = n == 0 && y0 == 0;  // the group's sums start here (no zeroing pass)
          const float* dyg = dy + (n * g.C_out + grp * cog) * g.P();
          const float* xg = x + (n * g.C_in + grp * cig) * g.HW();
          for (int64_t o0 = 0; o0 < cog; o0 += kStridedOut) {
            pack_dy_rows(dyg + o0 * g.P(), g.P(), g.W_out, y0, y1, vectors, packed.get());
            // What the next pack reads: this band's next 8 channels, or the next band's first.
            const bool next_in_band = o0 + kStridedOut < cog;
            const float* next_dy = nullptr;
            const DyShare* share = nullptr;
            if (next_in_band || has_next) {
              const int64_t o = next_in_band ? o0 + kStridedOut : 0;
              const int64_t ny0 = next_in_band ? y0 : next_y0, ny1 = next_in_band ? y1 : next_y1;
              const int64_t ngrp = next_in_band ? grp : next_grp, nn = next_in_band ? n : next_n;
              next_dy = dy + (nn * g.C_out + ngrp * cog + o) * g.P() + ny0 * g.W_out;
              share = dy_shares((ny1 - ny0) * g.W_out * int64_t{sizeof(float)});
            }
            for (int64_t i = 0; i < cig; ++i) {
              for (int ky = 0; ky < 3; ++ky) {
                // dy rows [r0, r1) of the band read x rows 2 oy + ky - ph inside x.
                const int64_t r0 = std::clamp(ceil_div(g.ph - ky, 2), y0, y1);
                const int64_t r1 = std::clamp(floor_div(g.H - 1 + g.ph - ky, 2) + 1, r0, y1);
                float* sums = lanes.get() + ((o0 * cig + i) * kTaps + ky * 3) * kLanes;
                const float* xr = r1 > r0 ? xg + i * g.HW() + (2 * r0 + ky - g.ph) * g.W : xg;
                LinesAhead ahead;
                if (o0 == 0 && has_next) {  // the x rows the next band adds, from its channel i
                  const int64_t from = std::max<int64_t>(0, next_y0 == 0 ? 0 : 2 * next_y0 - g.ph + 1);
                  const int64_t to = std::min(g.H, 2 * next_y1 - g.ph + 1);
                  const char* start = bytes(x + (next_n * g.C_in + next_grp * cig + i) * g.HW() + from * g.W);
                  const int64_t span = std::max<int64_t>(0, (to - from) * g.W * int64_t{sizeof(float)});
                  ahead.x = start + span * ky / 3, ahead.x_end = start + span * (ky + 1) / 3;
                }
                if (next_dy != nullptr) {
                  const DyShare& sh = share[i * 3 + ky];
                  const char* start = bytes(next_dy + sh.channel * g.P());
                  ahead.dy = start + sh.from, ahead.dy_end = start + sh.to;
                }
                strided_weight_block(packed.get() + (r0 - y0) * row_floats, xr, 2 * g.W, r1 - r0, vectors, masks, first,
                                     sums, cig * kTaps * kLanes, ahead);
              }
            }
          }
        }
      }
      store_lane_sums(lanes.get(), block, dw + grp * block);
    }
  }
}

}  // namespace gndet::grouped::strided

#endif
