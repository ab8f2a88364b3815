// Direct grouped 3x3 convolution: see conv_grouped.h for what and why.
//
// Register blocking. The forward and the input gradient compute 4 output channels x 6 vectors of
// 16 positions at a time (24 accumulators of the 32 AVX-512 registers; the vectors of one row, or
// of 2-6 rows when rows are narrow): per source channel and kernel tap, 6 loads and 4 broadcasts
// feed 24 fused multiply-adds. The weight gradient keeps 4 output channels x 2 input channels x
// 3 kernel columns of one kernel row (24 sums, each a vector of 16 positions' products) while it
// sweeps a band's positions: per 24 multiply-adds, 4 loads of dy and 4 of x (two channels' vector
// and the next), kernel columns 1 and 2 shifted out of them in registers (at stride 2 column 1 is
// the odd phase's row: 2 more loads, 2 shifts).
//
// Flat sweeps. At stride 1 a band's rows can sit only W + 2 floats apart (the columns the taps
// read) and be swept as one long row: the forward and the input gradient drop the 2 lanes per
// row that fall between rows as they store (compute_flat; where rounding rows up to whole vectors
// would waste more).
//
// Straight from the tensors. At stride 1 with padding 1 across, a row of the source is as wide
// as a row of the output, so nothing needs copying: the weight gradient sweeps x's and dy's
// planes together and masks off the products where a kernel column wraps into the next row
// (direct_weight_block); the forward and input gradient, where their rows are not swept flat,
// load each row's first and last vector under masks (RowMasks). At stride 2 with padding 1
// across and 8k output channels per group (ResNeXt's strided 3 x 3s) all three go to
// conv_grouped_strided.cpp, which picks the column phases in registers. Before either, with 16k
// channels per group and pw = 1 (ResNeXt's layer3-4, both strides), or 8 at stride 1 across
// (layer2's stride-1 3 x 3s: 8 channels x 2 positions per vector), conv_grouped_channels.cpp
// takes them, its vectors along the channels (no column phases to pick at all). Everything else
// reads padded copies (bands), split by column phase at stride 2.
//
// Memory. A band's input (copied or not) is asked for while the previous band computes
// (Prefetcher): each thread works through a contiguous run of bands, so it knows the next.
//
// Summation order. Every output element is summed by one thread in an order fixed by the
// geometry (source channel, then tap), and each group's weight gradient by one thread (in 16
// lanes of float across bands and images, the lanes added in double at the end), so no result
// depends on the thread count.
#include "ops/cpu/conv_grouped.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>
#include <omp.h>
#include <stdexcept>
#include <utility>
#include <vector>

#include "ops/cpu/conv_grouped_channels.h"
#include "ops/cpu/conv_grouped_simd.h"
#include "ops/cpu/conv_grouped_strided.h"
#include "ops/cpu/stride2.h"
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gndet::grouped {

#if defined(__AVX512F__)
namespace {

using namespace simd;

constexpr int kBlockOut = 4;       // output channels per register block
constexpr int kMaxVectors = 6;     // position vectors per register block: 4 x 6 = 24 accumulators
constexpr int64_t kMaxChannels = 64;  // per group; wider groups make a GEMM wide enough to pay
constexpr int64_t kMaxWeightChannels = 32;  // input channels per group for the weight gradient (header)
// One band's padded source: small enough to stay in L2 (2 MB per core here) beside the band's
// output and dy, large enough that the rows shared between neighbouring bands are a small part.
constexpr int64_t kBandBytes = int64_t{192} << 10;
// The weight gradient's: each weight_block call adds its 24 sums into the group's (cout x cin x 9
// x 16 lanes: 590 KB with 32 channels per group), and a band of only 5 rows (layer4's 32-channel
// stride-2 one at 192 KB) made that flush a sixth of the time. 512 KB: layer4's 3 x 3 / 2 weight
// gradient 104 -> 135 GFLOP/s, layer3's 111 -> 134, the others within 2% (768 KB and 1 MB the
// same; standalone, best of 20, 2026-12-07).
constexpr int64_t kWeightBandBytes = int64_t{512} << 10;

// [0, 1, ..., 15]: lane l's index, to compare positions against bounds a vector at a time.
__m512i lane_indices() { return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15); }

// A padded copy of `channels` source planes' rows [row0, row0 + rows), each row's columns split
// by phase modulo `phases` (the stride): element (c, r, q, j) is plane_c[row0 + r][col0 + j *
// phases + q], zero outside the plane. A tap at column offset k of a stride-s convolution then
// reads phase k % s from element k / s on: 16 consecutive floats per output vector.
struct Band {
  int64_t channels, rows, phases, ld;
  float* data;
  int64_t channel_stride() const { return rows * phases * ld; }
  int64_t offset(int64_t r, int64_t q, int64_t j) const { return (r * phases + q) * ld + j; }
};

// The inverse for one channel: row[2 b + q] = phase_q[b] for the W columns of a stride-2 row
// (phase 0 holds ceil(W / 2) of them, phase 1 floor(W / 2)).
void interleave(const float* even, const float* odd, int64_t W, float* row) {
  const __m512i lo = cpu::interleave_low_lanes();
  const __m512i hi = cpu::interleave_high_lanes();
  for (int64_t b = 0; 2 * b < W; b += kLanes) {
    const int64_t left = W - 2 * b;  // columns of row from 2 b on
    const __m512 e = _mm512_maskz_loadu_ps(lanes_mask((left + 1) / 2), even + b);
    const __m512 o = _mm512_maskz_loadu_ps(lanes_mask(left / 2), odd + b);
    _mm512_mask_storeu_ps(row + 2 * b, lanes_mask(left), _mm512_permutex2var_ps(e, lo, o));
    if (left > kLanes) {
      _mm512_mask_storeu_ps(row + 2 * b + kLanes, lanes_mask(left - kLanes), _mm512_permutex2var_ps(e, hi, o));
    }
  }
}

// out[j] = src[j - lo] for j in [lo, hi), 0 elsewhere in [0, ld): one padded row, in whole vectors
// (a memcpy and two fills per row were a tenth of the weight gradient's time on rows of 84, most
// of it in the calls).
void copy_padded(const float* src, int64_t lo, int64_t hi, int64_t ld, float* out) {
  for (int64_t j = 0; j < ld; j += kLanes) {
    // Lanes j + l in [lo, hi) read src; the others are zero (masked loads do not touch memory).
    _mm512_mask_storeu_ps(out + j, lanes_mask(ld - j), _mm512_maskz_loadu_ps(lanes_within(j, lo, hi), src + (j - lo)));
  }
}

void fill_band(const float* planes, int64_t plane_stride, int64_t H, int64_t W, int64_t row0, int64_t col0,
               const Band& b) {
  for (int64_t c = 0; c < b.channels; ++c) {
    for (int64_t r = 0; r < b.rows; ++r) {
      float* out = b.data + c * b.channel_stride() + b.offset(r, 0, 0);
      const int64_t ih = row0 + r;
      if (ih < 0 || ih >= H) {
        std::fill(out, out + b.phases * b.ld, 0.0f);
        continue;
      }
      const float* row = planes + c * plane_stride + ih * W;
      if (b.phases == 2) {
        cpu::split_stride2_padded(row, col0, W, b.ld, out, out + b.ld);
      } else {  // out[j] = row[col0 + j] for col0 + j in [0, W)
        copy_padded(row, -col0, W - col0, b.ld, out);
      }
    }
  }
}

// The taps that reach one output row (and column phase): where each reads, relative to the
// source's channel 0 at the row's first output position, and which of the 9 weights it uses.
struct Taps {
  int count = 0;
  int64_t offset[kTaps];
  int weight[kTaps];
  int column[kTaps];  // the source column each reads, relative to the output's (read straight from a tensor)
  // The lanes a block's first and last vector load (masked blocks only: RowMasks).
  __mmask16 first[kTaps], last[kTaps];
  void add(int64_t off, int w, int col = 0) { offset[count] = off, weight[count] = w, column[count] = col, ++count; }
};

// Where a stride-1 forward or input gradient reads its source straight from the tensor (its rows
// as wide as the output's, no padded band): for each tap, the lanes of a row's first vector and
// of its last whose source column (the output's plus the tap's column offset) is inside the row,
// kept in copies of the taps, where the block's loop reads them beside each tap's offset.
struct RowMasks {
  // The taps with the masks of a block's first and last vector: none, the row's first, its last,
  // both (a block of a whole row), and for blocks of one vector its last or a row's only one.
  Taps inner, head, tail, head_tail, one_tail, one_both;
  RowMasks(const Taps& taps, int64_t width)
      : inner(taps), head(taps), tail(taps), head_tail(taps), one_tail(taps), one_both(taps) {
    const int64_t last = (ceil_div(width, kLanes) - 1) * kLanes;
    auto inside = [&](int64_t first, int d) {  // lanes l with first + l and first + l + d in [0, width)
      return lanes_within(first, std::max(0, -d), width - std::max(0, d));
    };
    for (int t = 0; t < taps.count; ++t) {
      const __mmask16 h = inside(0, taps.column[t]), e = inside(last, taps.column[t]);
      inner.first[t] = inner.last[t] = 0xFFFF;
      head.first[t] = h, head.last[t] = 0xFFFF;
      tail.first[t] = 0xFFFF, tail.last[t] = e;
      head_tail.first[t] = h, head_tail.last[t] = e;
      one_tail.first[t] = one_tail.last[t] = e;
      one_both.first[t] = one_both.last[t] = static_cast<__mmask16>(h & e);
    }
  }
  // The taps of a block of V vectors from the row's first (`first`) or to its last (`end`).
  const Taps& of(int V, bool first, bool end) const {
    if (V == 1) return first && end ? one_both : first ? head : end ? one_tail : inner;
    return first && end ? head_tail : first ? head : end ? tail : inner;
  }
};

// Touches the cache lines of the next band's input (rows `span` floats long from `first`, in
// `channels` planes `plane` floats apart) a few at a time while the current band computes, so that
// the next copy (fill_band) finds them in L2 rather than waiting on memory with nothing to do.
class Prefetcher {
 public:
  Prefetcher() = default;
  Prefetcher(const float* first, int64_t plane, int64_t span, int64_t channels, int64_t calls)
      : first_(reinterpret_cast<const char*>(first)), plane_bytes_(plane * int64_t{sizeof(float)}),
        span_bytes_(span * int64_t{sizeof(float)}), channels_(channels) {
    const int64_t lines = channels * ceil_div(span_bytes_, kLine);
    per_call_ = ceil_div(lines, std::max<int64_t>(calls, 1));
  }
  // One call's share of the lines; the calls of a band take them all.
  void ahead() {
    for (int64_t i = 0; i < per_call_ && channel_ < channels_; ++i) {
      _mm_prefetch(first_ + channel_ * plane_bytes_ + offset_, _MM_HINT_T1);
      offset_ += kLine;
      if (offset_ >= span_bytes_) offset_ = 0, ++channel_;
    }
  }

 private:
  static constexpr int64_t kLine = 64;
  const char* first_ = nullptr;
  int64_t plane_bytes_ = 0, span_bytes_ = 0, channels_ = 0, per_call_ = 0, channel_ = 0, offset_ = 0;
};

// acc[o][r V + v] (o < 4, r < R, v < V), lane l = bias[o] + sum over source channels c and taps t
// of w[o * wo + c * 9 + t.weight] * src[c * cs + t.offset + r srs + 16 v + l]: R output rows of V
// vectors each (R > 1 for narrow rows, so that V R accumulators per channel are still busy).
// With `masked`, each row's first vector loads under taps.first[t] and its last under
// taps.last[t] (the source read straight from a tensor: RowMasks).
template <int V, int R, bool masked>
__attribute__((always_inline)) inline void accumulate(const float* src, int64_t cs, int64_t cin, const Taps& taps,
                                                      const float* w, int64_t wo, const float* bias, int64_t srs,
                                                      __m512 (&acc)[kBlockOut][R * V]) {
  for (int o = 0; o < kBlockOut; ++o) {
    const __m512 init = bias != nullptr ? _mm512_set1_ps(bias[o]) : _mm512_setzero_ps();
    for (int v = 0; v < R * V; ++v) acc[o][v] = init;
  }
  for (int64_t c = 0; c < cin; ++c) {
    const float* s = src + c * cs;
    const float* wc = w + c * kTaps;
    for (int t = 0; t < taps.count; ++t) {
      const float* p = s + taps.offset[t];
      __m512 in[R * V];
      if constexpr (masked) {
        const __mmask16 mf = taps.first[t], ml = taps.last[t];
        for (int r = 0; r < R; ++r) {
          for (int v = 0; v < V; ++v) {
            const float* at = p + r * srs + v * kLanes;
            in[r * V + v] = v == 0 ? masked_load(mf, at) : v == V - 1 ? masked_load(ml, at) : _mm512_loadu_ps(at);
          }
        }
      } else {
        for (int r = 0; r < R; ++r) {
          for (int v = 0; v < V; ++v) in[r * V + v] = _mm512_loadu_ps(p + r * srs + v * kLanes);
        }
      }
      const float* wt = wc + taps.weight[t];
      for (int o = 0; o < kBlockOut; ++o) {
        const __m512 wv = _mm512_set1_ps(wt[o * wo]);
        for (int v = 0; v < R * V; ++v) acc[o][v] = _mm512_fmadd_ps(wv, in[v], acc[o][v]);
      }
    }
  }
}

// The sums above stored to out[o * os + r * ors + 16 v + l], each row's last vector under `last`.
template <int V, int R, bool masked = false>
void block(const float* src, int64_t cs, int64_t cin, const Taps& taps, const float* w, int64_t wo, const float* bias,
           float* out, int64_t os, __mmask16 last, int64_t srs, int64_t ors) {
  __m512 acc[kBlockOut][R * V];
  accumulate<V, R, masked>(src, cs, cin, taps, w, wo, bias, srs, acc);
  for (int o = 0; o < kBlockOut; ++o) {
    for (int r = 0; r < R; ++r) {
      float* d = out + o * os + r * ors;
      for (int v = 0; v < V - 1; ++v) _mm512_storeu_ps(d + v * kLanes, acc[o][r * V + v]);
      _mm512_mask_storeu_ps(d + (V - 1) * kLanes, last, acc[o][r * V + V - 1]);
    }
  }
}

// Where one vector of a flat sweep goes: its lanes under `keep` (the others fall between rows or
// past the last), packed, to out + at.
struct FlatVector {
  __mmask16 keep;
  int64_t at;
};

// The sums of V vectors (R = 1) of a flat sweep stored where `to` says.
template <int V>
void flat_block(const float* src, int64_t cs, int64_t cin, const Taps& taps, const float* w, int64_t wo,
                const float* bias, float* out, int64_t os, const FlatVector* to) {
  __m512 acc[kBlockOut][V];
  accumulate<V, 1, false>(src, cs, cin, taps, w, wo, bias, 0, acc);
  for (int o = 0; o < kBlockOut; ++o) {
    float* d = out + o * os;
    for (int v = 0; v < V; ++v) {
      if (to[v].keep == 0xFFFF) {
        _mm512_storeu_ps(d + to[v].at, acc[o][v]);
      } else {
        const int n = __builtin_popcount(to[v].keep);
        _mm512_mask_storeu_ps(d + to[v].at, lanes_mask(n), _mm512_maskz_compress_ps(to[v].keep, acc[o][v]));
      }
    }
  }
}

// `rows` output rows (ors apart) of `cout` channels (os apart) and `width` positions, whose taps
// read srs further in the source per row; the source read straight from a tensor where `masks`
// is given (each row's first and last vector loaded under them).
void compute_rows(const float* src, int64_t cs, int64_t cin, const Taps& taps, const float* w, int64_t wo,
                  int64_t cout, const float* bias, float* out, int64_t os, int64_t width, int64_t rows, int64_t srs,
                  int64_t ors, Prefetcher* prefetch = nullptr, const RowMasks* masks = nullptr) {
  const int64_t vectors = ceil_div(width, kLanes);
  const __mmask16 tail = lanes_mask(width - (vectors - 1) * kLanes);
  for (int64_t o = 0; o < cout; o += kBlockOut) {
    const float* wb = w + o * wo;
    const float* bb = bias != nullptr ? bias + o : nullptr;
    float* ob = out + o * os;
    // V vectors of R rows from row r, vector v0 (of `vectors`) on.
    auto run = [&]<int V, int R>(int64_t r, int64_t v0, int64_t rs, int64_t os_row) {
      const float* s = src + r * srs + v0 * kLanes;
      float* d = ob + r * ors + v0 * kLanes;
      const bool first = v0 == 0, end = v0 + V == vectors;
      const __mmask16 last = end ? tail : __mmask16(0xFFFF);
      if (prefetch != nullptr) prefetch->ahead();
      if (masks == nullptr) return block<V, R>(s, cs, cin, taps, wb, wo, bb, d, os, last, rs, os_row);
      block<V, R, true>(s, cs, cin, masks->of(V, first, end), wb, wo, bb, d, os, last, rs, os_row);
    };
    int64_t r = 0;
    if (vectors == 3) {  // ResNeXt's layer4 (42 columns): two rows per block
      for (; r + 2 <= rows; r += 2) run.template operator()<3, 2>(r, 0, srs, ors);
    } else if (vectors == 2) {
      for (; r + 3 <= rows; r += 3) run.template operator()<2, 3>(r, 0, srs, ors);
    } else if (vectors == 1) {
      for (; r + 6 <= rows; r += 6) run.template operator()<1, 6>(r, 0, srs, ors);
    }
    // Rows of blocks of up to kMaxVectors: each block asks for the output lines the next one
    // writes (the first for its own too), so that its stores find them owned instead of each
    // waiting for its line's read for ownership (layer1's 3 x 3 forward 0.46 -> 0.51 of the fp32
    // peak, median of 6 alternated bench/cpu_layers runs, 2026-12-07).
    auto write_ahead = [&](int64_t r, int64_t v0) {
      if (r < rows) {
        prefetch_for_writing(ob + r * ors + v0 * kLanes, os, kBlockOut, std::min<int64_t>(kMaxVectors * kLanes, width - v0 * kLanes));
      }
    };
    if (r < rows) write_ahead(r, 0);
    for (; r < rows; ++r) {
      for (int64_t v0 = 0; v0 < vectors; v0 += kMaxVectors) {
        v0 + kMaxVectors < vectors ? write_ahead(r, v0 + kMaxVectors) : write_ahead(r + 1, 0);
        switch (std::min<int64_t>(kMaxVectors, vectors - v0)) {
          case 1: run.template operator()<1, 1>(r, v0, 0, 0); break;
          case 2: run.template operator()<2, 1>(r, v0, 0, 0); break;
          case 3: run.template operator()<3, 1>(r, v0, 0, 0); break;
          case 4: run.template operator()<4, 1>(r, v0, 0, 0); break;
          case 5: run.template operator()<5, 1>(r, v0, 0, 0); break;
          default: run.template operator()<6, 1>(r, v0, 0, 0); break;
        }
      }
    }
  }
}

// Stride 1 with rows of 16 or more: `rows` output rows of `width` positions (the rows of out, os
// apart per channel, follow one another) from a band whose rows are ld = width + 2 floats apart.
// The band's positions are swept as one long row, each vector's lanes between two rows
// dropped on the way out: 2 lanes per row spent on nothing, where rows rounded up to whole
// vectors spend up to 15 (ResNeXt's layer3, 84 columns: 12 of every 96).
void compute_flat(const float* src, int64_t cs, int64_t cin, const Taps& taps, const float* w, int64_t wo,
                  int64_t cout, const float* bias, float* out, int64_t os, int64_t width, int64_t rows, int64_t ld,
                  std::vector<FlatVector>& to, Prefetcher* prefetch) {
  const int64_t end = (rows - 1) * ld + width;  // past the last row's last position
  const int64_t vectors = ceil_div(end, kLanes);
  to.resize(static_cast<size_t>(vectors));
  const __m512i lane = lane_indices();
  for (int64_t v = 0; v < vectors; ++v) {
    // Flat position f = v 16 + lane is column f % ld of row f / ld; with ld > 16 a vector meets
    // at most one row's end.
    const int64_t f0 = v * kLanes, row = f0 / ld, col0 = f0 - row * ld;
    const __m512i col = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int>(col0)), lane);
    const __mmask16 in_row = _mm512_cmplt_epi32_mask(col, _mm512_set1_epi32(static_cast<int>(width)));
    const __mmask16 next_row = _mm512_cmpge_epi32_mask(col, _mm512_set1_epi32(static_cast<int>(ld)));
    to[static_cast<size_t>(v)] = {static_cast<__mmask16>((in_row | next_row) & lanes_mask(end - f0)),
                                  row * width + std::min(col0, width)};
  }
  for (int64_t o = 0; o < cout; o += kBlockOut) {
    const float* wb = w + o * wo;
    const float* bb = bias != nullptr ? bias + o : nullptr;
    float* ob = out + o * os;
    for (int64_t v0 = 0; v0 < vectors; v0 += kMaxVectors) {
      const float* s = src + v0 * kLanes;
      const FlatVector* t = to.data() + v0;
      if (prefetch != nullptr) prefetch->ahead();
      switch (std::min<int64_t>(kMaxVectors, vectors - v0)) {
        case 1: flat_block<1>(s, cs, cin, taps, wb, wo, bb, ob, os, t); break;
        case 2: flat_block<2>(s, cs, cin, taps, wb, wo, bb, ob, os, t); break;
        case 3: flat_block<3>(s, cs, cin, taps, wb, wo, bb, ob, os, t); break;
        case 4: flat_block<4>(s, cs, cin, taps, wb, wo, bb, ob, os, t); break;
        case 5: flat_block<5>(s, cs, cin, taps, wb, wo, bb, ob, os, t); break;
        default: flat_block<6>(s, cs, cin, taps, wb, wo, bb, ob, os, t); break;
      }
    }
  }
}

// Whether stride-1 rows `width` wide take compute_flat: where rounding each row up to whole
// vectors spends at least 1/8 of the lanes on nothing (84 and 42 columns: 12 of 96, 6 of 48;
// each 11% faster flat, forward and input gradient). At 168 columns (8 of 176) the flat sweep
// was no faster and at 336 (none) 10% slower (standalone, best of 30, 2026-12-07): its rows
// start anywhere in a cache line, so loads and stores straddle two, where whole-vector rows
// keep a third of the loads and all the stores within one.
bool flat_rows(const ConvGeometry& g, int64_t width) {
  return g.sh == 1 && g.sw == 1 && width >= kLanes && 8 * (round_up(width, kLanes) - width) >= round_up(width, kLanes);
}

// The number of block calls compute_rows makes per 4 output channels.
int64_t blocks_per_channel_block(int64_t width, int64_t rows) {
  const int64_t vectors = ceil_div(width, kLanes);
  const int64_t per = vectors <= 3 ? kMaxVectors / vectors : 1, multi = vectors <= 3 ? rows / per : 0;
  return multi + (rows - multi * per) * ceil_div(vectors, kMaxVectors);
}

// The same for compute_flat: `rows` rows of `width` positions, ld apart in the band.
int64_t flat_blocks_per_channel_block(int64_t width, int64_t rows, int64_t ld) {
  return ceil_div(ceil_div((rows - 1) * ld + width, kLanes), kMaxVectors);
}

// Output rows per band: as many as keep `channels` padded source rows of ld x phases floats
// (rows_in(out_rows) of them) within `bytes`, at least one.
template <class RowsIn>
int64_t band_rows(int64_t out_rows, int64_t channels, int64_t phases, int64_t ld, int64_t bytes, RowsIn rows_in) {
  int64_t n = out_rows;
  while (n > 1 && channels * rows_in(n) * phases * ld * int64_t{sizeof(float)} > bytes) n = (n + 1) / 2;
  return n;
}

// The padded x band of the forward and the weight gradient: output rows [y0, y1) read input rows
// [y0 sh - ph, (y1 - 1) sh - ph + 3), columns split by the stride. Rows are ld floats apart: a
// whole number of vectors past the output row's width and the taps' reach, or `tight` (stride 1
// only), exactly the W_out + 2 columns the taps read, so that the band's positions run on from
// row to row with 2 columns between (the forward's flat sweep).
struct InputBands {
  const ConvGeometry& g;
  int64_t ld, rows_out, rows_in;
  InputBands(const ConvGeometry& geometry, int64_t bytes, bool tight = false) : g(geometry) {
    ld = tight ? g.W_out + 2 : round_up(round_up(g.W_out, kLanes) + 2 / g.sw, kLanes);
    auto in_rows = [&](int64_t n) { return (n - 1) * g.sh + 3; };
    rows_out = band_rows(g.H_out, g.cin_g(), g.sw, ld, bytes, in_rows);
    rows_in = in_rows(rows_out);
  }
  int64_t count() const { return ceil_div(g.H_out, rows_out); }
  // Floats of scratch for one band, and 2 vectors for the reads a flat sweep makes past its end.
  int64_t scratch() const { return g.cin_g() * rows_in * g.sw * ld + 2 * kLanes; }
  // Fills `data` with the band of image n, group grp, that starts at output row y0.
  Band fill(const float* x, int64_t n, int64_t grp, int64_t y0, int64_t y1, float* data) const {
    const Band b{g.cin_g(), (y1 - 1 - y0) * g.sh + 3, g.sw, ld, data};
    fill_band(x + (n * g.C_in + grp * g.cin_g()) * g.HW(), g.HW(), g.H, g.W, y0 * g.sh - g.ph, -g.pw, b);
    return b;
  }
  // The prefetcher of that band's input rows, spread over `calls` calls.
  Prefetcher prefetcher(const float* x, int64_t n, int64_t grp, int64_t y0, int64_t y1, int64_t calls) const {
    const int64_t r0 = std::max<int64_t>(0, y0 * g.sh - g.ph), r1 = std::min(g.H, (y1 - 1) * g.sh - g.ph + 3);
    if (r1 <= r0) return {};
    return {x + (n * g.C_in + grp * g.cin_g()) * g.HW() + r0 * g.W, g.HW(), (r1 - r0) * g.W, g.cin_g(), calls};
  }
  // Where tap (ky, kx) of output row oy reads in a band that starts at output row y0.
  int64_t tap(const Band& b, int64_t oy, int64_t y0, int64_t ky, int64_t kx) const {
    return b.offset((oy - y0) * g.sh + ky, kx % g.sw, kx / g.sw);
  }
};

}  // namespace

bool enabled() {
  static const bool on = [] {
    const char* v = std::getenv("GNDET_GROUPED_DIRECT");
    return v == nullptr || std::strcmp(v, "0") != 0;
  }();
  return on;
}

bool applies(const ConvGeometry& g) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  return enabled() && g.groups > 1 && g.kh == 3 && g.kw == 3 && g.dh == 1 && g.dw == 1 && g.sh >= 1 && g.sh <= 2 && g.sw >= 1 &&
         g.sw <= 2 && g.ph >= 0 && g.ph <= 2 && g.pw >= 0 && g.pw <= 2 && cig % kBlockOut == 0 &&
         cog % kBlockOut == 0 && cig >= kBlockOut && cog >= kBlockOut && cig <= kMaxChannels && cog <= kMaxChannels &&
         g.H_out > 0 && g.W_out > 0 && g.H_out == (g.H + 2 * g.ph - 3) / g.sh + 1 &&
         g.W_out == (g.W + 2 * g.pw - 3) / g.sw + 1;
}

bool applies_to_weight_gradient(const ConvGeometry& g) { return applies(g) && g.cin_g() <= kMaxWeightChannels; }

void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y) {
  if (channels::applies(g)) return channels::forward(g, x, w, b, y);
  if (strided::applies(g)) return strided::forward(g, x, w, b, y);
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  const bool flat = flat_rows(g, g.W_out);
  // Straight from x where rows rounded up to whole vectors lose little (not flat) and a row of
  // x is as wide as one of y (stride 1, pw = 1): the band's copy was 14% of layer2's time.
  const bool direct = !flat && g.sh == 1 && g.sw == 1 && g.pw == 1;
  const InputBands bands(g, kBandBytes, flat);
  const int64_t per_image = g.groups * bands.count(), items = g.N * per_image;
  // Item i: image i / per_image, group (i % per_image) / bands, band i % bands.
  auto rows_of = [&](int64_t item) {
    const int64_t y0 = item % bands.count() * bands.rows_out;
    return std::pair{y0, std::min(g.H_out, y0 + bands.rows_out)};
  };
  // The block calls of a band of `rows` rows, to spread the next band's prefetching over.
  auto calls = [&](int64_t rows) {
    if (flat) return cog / kBlockOut * flat_blocks_per_channel_block(g.W_out, rows, bands.ld);
    return cog / kBlockOut * blocks_per_channel_block(g.W_out, rows);
  };
#pragma omp parallel if (items > 1)
  {
    const Scratch scratch(bands.scratch());
    std::vector<FlatVector> to;
    const auto [lo, hi] = thread_share(items);
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t n = item / per_image, grp = item % per_image / bands.count();
      const auto [y0, y1] = rows_of(item);
      const float* wg = w + grp * cog * cig * kTaps;
      const float* bg = b != nullptr ? b + grp * cog : nullptr;
      Prefetcher next;  // the next band's input
      if (item + 1 < hi) {
        const auto [n0, n1] = rows_of(item + 1);
        next = bands.prefetcher(x, (item + 1) / per_image, (item + 1) % per_image / bands.count(), n0, n1,
                                calls(y1 - y0));
      }
      float* yb = y + ((n * g.C_out + grp * cog) * g.H_out + y0) * g.W_out;
      if (direct) {  // runs of rows whose kernel rows all reach the same rows of x
        const float* xg = x + (n * g.C_in + grp * cig) * g.HW();
        auto reach = [&](int64_t oy) {  // kernel rows [lo, hi) read inside x: oy + ky - ph in [0, H)
          return std::pair{std::max<int64_t>(0, g.ph - oy), std::min<int64_t>(3, g.H + g.ph - oy)};
        };
        for (int64_t r0 = y0, r1; r0 < y1; r0 = r1) {
          const auto [lo, hi] = reach(r0);
          for (r1 = r0 + 1; r1 < y1 && reach(r1) == reach(r0);) ++r1;
          Taps taps;
          for (int64_t ky = lo; ky < hi; ++ky) {
            for (int kx = 0; kx < 3; ++kx) {
              taps.add((r0 + ky - g.ph) * g.W + kx - 1, static_cast<int>(ky) * 3 + kx, kx - 1);
            }
          }
          const RowMasks masks(taps, g.W_out);
          compute_rows(xg, g.HW(), cig, taps, wg, cig * kTaps, cog, bg, yb + (r0 - y0) * g.W_out, g.P(), g.W_out, r1 - r0,
                       g.W, g.W_out, &next, &masks);
        }
        continue;
      }
      const Band band = bands.fill(x, n, grp, y0, y1, scratch.get());
      Taps taps;  // of row y0; each further row reads sh band rows further on
      for (int ky = 0; ky < 3; ++ky) {
        for (int kx = 0; kx < 3; ++kx) taps.add(bands.tap(band, y0, y0, ky, kx), ky * 3 + kx);
      }
      if (flat) {
        compute_flat(band.data, band.channel_stride(), cig, taps, wg, cig * kTaps, cog, bg, yb, g.P(), g.W_out, y1 - y0,
                     band.ld, to, &next);
      } else {
        compute_rows(band.data, band.channel_stride(), cig, taps, wg, cig * kTaps, cog, bg, yb, g.P(), g.W_out, y1 - y0,
                     g.sh * band.phases * band.ld, g.W_out, &next);
      }
    }
  }
}

// dx[i][y][x] = sum over o, ky, kx of w[o][i][ky][kx] dy[o][(y + ph - ky) / sh][(x + pw - kx) / sw],
// over the taps where both divisions are exact and land inside dy. With stride 2, the columns
// x = 2 b + q of one phase q share their taps: each phase is computed as a row of its own and
// the two are interleaved into dx.
void conv2d_backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx) {
  if (channels::applies_to_input_gradient(g)) return channels::backward_input(g, dy, w, dx);
  if (strided::applies(g)) return strided::backward_input(g, dy, w, dx);
  const int64_t cig = g.cin_g(), cog = g.cout_g(), taps_w = cig * cog * kTaps;
  // The kernel with its channel axes swapped, per group: wt[grp][i][o][tap].
  std::vector<float> wt(static_cast<size_t>(g.groups * taps_w));
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    for (int64_t o = 0; o < cog; ++o) {
      for (int64_t i = 0; i < cig; ++i) {
        std::memcpy(&wt[static_cast<size_t>(((grp * cig + i) * cog + o) * kTaps)], w + ((grp * cog + o) * cig + i) * kTaps,
                    kTaps * sizeof(float));
      }
    }
  }
  const int64_t pad_left = std::max<int64_t>(0, ceil_div(2 - g.pw, g.sw));  // dy columns left of 0 a tap may read
  const int64_t phase_width = ceil_div(g.W, g.sw);                         // columns of phase 0, the widest
  // Band rows: a whole number of vectors past the taps' reach, or for a flat sweep (stride 1) the
  // W + 2 columns the taps read (dy columns -pad_left on; the taps read columns [0, 2] on).
  const bool flat = flat_rows(g, g.W);
  // Straight from dy as the forward reads x (`direct` there): rows not swept flat, stride 1, pw = 1.
  const bool direct = !flat && g.sh == 1 && g.sw == 1 && g.pw == 1;
  const int64_t ld = flat ? g.W + 2 : round_up(round_up(phase_width, kLanes) + (g.sw - 1 + g.pw) / g.sw + pad_left + 1, kLanes);
  // dy rows that dx rows [y0, y1) read: [floor((y0 + ph - 2) / sh), floor((y1 - 1 + ph) / sh)].
  auto first_row = [&](int64_t y0) { return floor_div(y0 + g.ph - 2, g.sh); };
  auto rows_in = [&](int64_t y0, int64_t y1) { return floor_div(y1 - 1 + g.ph, g.sh) - first_row(y0) + 1; };
  const int64_t rows_out = band_rows(g.H, cog, 1, ld, kBandBytes, [&](int64_t n) { return n / g.sh + 3; });
  int64_t max_rows_in = 0;
  for (int64_t y0 = 0; y0 < g.H; y0 += rows_out) max_rows_in = std::max(max_rows_in, rows_in(y0, std::min(g.H, y0 + rows_out)));
  const int64_t count = ceil_div(g.H, rows_out), per_image = g.groups * count;
  const int64_t phase_ld = round_up(phase_width, kLanes);
  const int64_t items = g.N * per_image;
  // Item i: image i / per_image, group (i % per_image) / count, band i % count.
  auto rows_of = [&](int64_t item) {
    const int64_t y0 = item % count * rows_out;
    return std::pair{y0, std::min(g.H, y0 + rows_out)};
  };
  // The block calls of one band (to spread the next band's prefetching over).
  auto calls = [&](int64_t rows) {
    if (flat) return cig / kBlockOut * flat_blocks_per_channel_block(g.W, rows, ld);
    if (g.sh == 1 && g.sw == 1) return cig / kBlockOut * blocks_per_channel_block(g.W, rows);
    return cig / kBlockOut * rows * g.sw * ceil_div(ceil_div(phase_width, kLanes), kMaxVectors);
  };
#pragma omp parallel if (items > 1)
  {
    // The band, what a flat sweep reads past it (2 vectors), the phases of a stride-2 row.
    const Scratch scratch(cog * max_rows_in * ld + 2 * kLanes + cig * g.sw * phase_ld);
    float* phases = scratch.get() + cog * max_rows_in * ld + 2 * kLanes;
    std::vector<FlatVector> to;
    const auto [lo, hi] = thread_share(items);
    for (int64_t item = lo; item < hi; ++item) {
      const int64_t n = item / per_image, grp = item % per_image / count;
      const auto [y0, y1] = rows_of(item);
      const int64_t row0 = first_row(y0);
      Prefetcher next;
      if (item + 1 < hi) {  // the dy rows of the next band
        const auto [n0, n1] = rows_of(item + 1);
        const int64_t r0 = std::max<int64_t>(0, first_row(n0)), r1 = std::min(g.H_out, first_row(n0) + rows_in(n0, n1));
        const int64_t next_n = (item + 1) / per_image, next_grp = (item + 1) % per_image / count;
        if (r1 > r0) {
          next = Prefetcher(dy + (next_n * g.C_out + next_grp * cog) * g.P() + r0 * g.W_out, g.P(), (r1 - r0) * g.W_out,
                            cog, calls(y1 - y0));
        }
      }
      const float* wg = wt.data() + grp * taps_w;
      float* dx_rows = dx + (n * g.C_in + grp * cig) * g.HW();
      if (direct) {  // runs of rows whose kernel rows all reach the same rows of dy
        const float* dyg = dy + (n * g.C_out + grp * cog) * g.P();
        auto reach = [&](int64_t iy) {  // kernel rows (lo, hi] read inside dy: iy + ph - ky in [0, H_out)
          return std::pair{std::max<int64_t>(-1, iy + g.ph - g.H_out), std::min<int64_t>(2, iy + g.ph)};
        };
        for (int64_t r0 = y0, r1; r0 < y1; r0 = r1) {
          const auto [lo, hi] = reach(r0);
          for (r1 = r0 + 1; r1 < y1 && reach(r1) == reach(r0);) ++r1;
          Taps taps;
          for (int64_t ky = hi; ky > lo; --ky) {
            for (int kx = 2; kx >= 0; --kx) {
              taps.add((r0 + g.ph - ky) * g.W_out + 1 - kx, static_cast<int>(ky) * 3 + kx, 1 - kx);
            }
          }
          const RowMasks masks(taps, g.W);
          compute_rows(dyg, g.P(), cog, taps, wg, cog * kTaps, cig, nullptr, dx_rows + r0 * g.W, g.HW(), g.W, r1 - r0,
                       g.W_out, g.W, &next, &masks);
        }
        continue;
      }
      const Band band{cog, rows_in(y0, y1), 1, ld, scratch.get()};
      fill_band(dy + (n * g.C_out + grp * cog) * g.P(), g.P(), g.H_out, g.W_out, row0, -pad_left, band);
      for (int64_t iy = y0; iy < y1; ++iy) {
        if (g.sh == 1 && g.sw == 1 && iy > y0) break;  // the first row's call did the whole band
        for (int64_t q = 0; q < g.sw; ++q) {
          Taps taps;
          for (int ky = 0; ky < 3; ++ky) {
            const int64_t e = iy + g.ph - ky;
            if (e - g.sh * floor_div(e, g.sh) != 0) continue;  // reaches this row only at a stride-2 gap
            const int64_t r = floor_div(e, g.sh) - row0;
            for (int kx = 0; kx < 3; ++kx) {
              const int64_t d = q + g.pw - kx;
              if (d - g.sw * floor_div(d, g.sw) != 0) continue;
              taps.add(band.offset(r, 0, floor_div(d, g.sw) + pad_left), ky * 3 + kx);
            }
          }
          const int64_t width = ceil_div(g.W - q, g.sw);
          if (flat) {  // every row has the same taps, one band row further on
            compute_flat(band.data, band.channel_stride(), cog, taps, wg, cog * kTaps, cig, nullptr, dx_rows + iy * g.W,
                         g.HW(), width, y1 - y0, ld, to, &next);
          } else if (g.sh == 1 && g.sw == 1) {
            compute_rows(band.data, band.channel_stride(), cog, taps, wg, cog * kTaps, cig, nullptr,
                         dx_rows + iy * g.W, g.HW(), width, y1 - y0, ld, g.W, &next);
          } else if (g.sw == 1) {
            compute_rows(band.data, band.channel_stride(), cog, taps, wg, cog * kTaps, cig, nullptr,
                         dx_rows + iy * g.W, g.HW(), width, 1, 0, 0, &next);
          } else if (width > 0) {
            compute_rows(band.data, band.channel_stride(), cog, taps, wg, cog * kTaps, cig, nullptr,
                         phases + q * phase_ld, g.sw * phase_ld, width, 1, 0, 0, &next);
          }
        }
        if (g.sw == 2) {
          for (int64_t i = 0; i < cig; ++i) {
            interleave(phases + 2 * i * phase_ld, phases + (2 * i + 1) * phase_ld, g.W, dx_rows + i * g.HW() + iy * g.W);
          }
        }
      }
    }
  }
}

namespace {

// v shifted `by` lanes on, the first `by` lanes of next following: x[p + by, p + by + 16) from
// the vectors at p and p + 16 (one valignd; two loads where an unaligned load would straddle).
template <int by>
__attribute__((always_inline)) inline __m512 shifted(__m512 v, __m512 next) {
  // The zero-masking form with every lane kept: the plain one's undefined source makes GCC 12 warn.
  return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(0xFFFF, _mm512_castps_si512(next), _mm512_castps_si512(v), by));
}

// sums[o][k] (16 lanes each) += the products of 4 output channels' dy, d[o * ds + r * ld + p], with
// 6 x rows (2 channels x 3 kernel columns), over `rows` rows of `ld` positions (a multiple of 16:
// dy's copy is zero past the row's end, so the lanes there add nothing): 24 accumulators in
// registers, added to the sums once per call (stored, the group's `first` time). x[c] points at
// channel c's kernel column 0 of row 0 (rows srs apart); column 1 reads 1 float on (stride 1) or
// the row's odd phase, phase_ld on (stride 2), column 2 one float on from column 0 (in phase 0 at
// stride 2). The shifted columns are made in registers from two whole-vector loads, the second
// reaching 16 floats past column 0's: unaligned loads that straddle two cache lines (five of
// every six) held the loop at ~80% of the FMA peak, the shifts at ~85% (standalone, 2026-12-07).
// Not inlined, so that a profile shows it apart from its caller (the same speed either way).
template <int stride>
__attribute__((noinline)) void weight_block(const float* d, int64_t ds, int64_t ld, const float* const x[2],
                                            int64_t phase_ld, int64_t srs, int64_t rows, bool first,
                                            float* const sums[kBlockOut][6]) {
  __m512 acc[kBlockOut][6];
  for (int o = 0; o < kBlockOut; ++o) {
    for (int k = 0; k < 6; ++k) acc[o][k] = _mm512_setzero_ps();
  }
  // All rows' vectors as one loop: a loop per row made GCC 12 store the accumulators to the
  // stack at the end of each row (and so did a masked tail per row, which the zeros past dy's
  // rows replace).
  const float* dr = d;
  const float* x0 = x[0];
  const float* x1 = x[1];
  int64_t p = 0;
  for (int64_t i = 0; i < rows * (ld / kLanes); ++i) {
    __m512 xv[6];
    const __m512 a0 = _mm512_loadu_ps(x0 + p), b0 = _mm512_loadu_ps(x0 + p + kLanes);
    const __m512 a1 = _mm512_loadu_ps(x1 + p), b1 = _mm512_loadu_ps(x1 + p + kLanes);
    xv[0] = a0, xv[3] = a1;
    if constexpr (stride == 1) {
      xv[1] = shifted<1>(a0, b0), xv[2] = shifted<2>(a0, b0);
      xv[4] = shifted<1>(a1, b1), xv[5] = shifted<2>(a1, b1);
    } else {
      xv[1] = _mm512_loadu_ps(x0 + phase_ld + p), xv[2] = shifted<1>(a0, b0);
      xv[4] = _mm512_loadu_ps(x1 + phase_ld + p), xv[5] = shifted<1>(a1, b1);
    }
    for (int o = 0; o < kBlockOut; ++o) {
      const __m512 dv = _mm512_load_ps(dr + o * ds + p);
      for (int k = 0; k < 6; ++k) acc[o][k] = _mm512_fmadd_ps(dv, xv[k], acc[o][k]);
    }
    p += kLanes;
    if (p == ld) p = 0, dr += ld, x0 += srs, x1 += srs;
  }
  for (int o = 0; o < kBlockOut; ++o) {
    for (int k = 0; k < 6; ++k) {
      _mm512_store_ps(sums[o][k], first ? acc[o][k] : _mm512_add_ps(_mm512_load_ps(sums[o][k]), acc[o][k]));
    }
  }
}

// Rows [y0, y1) of `channels` dy planes (P floats apart, W wide) copied `row_ld` floats apart
// (W <= row_ld), zeros between the rows and on to `channel_ld` floats per channel.
void copy_rows(const float* dy, int64_t P, int64_t W, int64_t y0, int64_t y1, int64_t channels, int64_t row_ld,
               int64_t channel_ld, float* out) {
  for (int64_t c = 0; c < channels; ++c, out += channel_ld) {
    float* row = out;
    for (int64_t y = y0; y < y1; ++y, row += row_ld) copy_padded(dy + c * P + y * W, 0, W, row_ld, row);
    std::fill(row, out + channel_ld, 0.0f);
  }
}

// Where weight_block's 24 sums for output channels o0..o0 + 3, input channels i0, i0 + 1 and
// kernel row ky live among a group's (cout x cin x 9 weights, 16 lanes each).
void sum_pointers(float* lanes, int64_t cig, int64_t o0, int64_t i0, int ky, float* (&sums)[kBlockOut][6]) {
  for (int k = 0; k < 6; ++k) {
    for (int o = 0; o < kBlockOut; ++o) {
      sums[o][k] = lanes + (((o0 + o) * cig + i0 + k / 3) * kTaps + ky * 3 + k % 3) * kLanes;
    }
  }
}

// Which lanes of each vector of a plane with rows W long (the one at position 16 j: masks[2 j]
// and masks[2 j + 1]) have a neighbour on the left in their row (kernel column 0 reads it) and on
// the right (column 2): column c > 0, c < W - 1. A table over the whole plane (a quarter of a
// plane's floats in bytes) so that the sweep indexes it as it goes: indexing a table of one
// period of the pattern (21 vectors at 168, 84 and 42 columns) and wrapping around made GCC 12
// store the accumulators at every wrap.
struct RowEdges {
  std::vector<__mmask16> masks;
  RowEdges(int64_t W, int64_t positions) : masks(static_cast<size_t>(2 * ceil_div(positions, kLanes))) {
    for (size_t j = 0; j < masks.size() / 2; ++j) {
      for (int l = 0; l < kLanes; ++l) {
        const int64_t c = (static_cast<int64_t>(j) * kLanes + l) % W;
        if (c > 0) masks[2 * j] |= static_cast<__mmask16>(1u << l);
        if (c < W - 1) masks[2 * j + 1] |= static_cast<__mmask16>(1u << l);
      }
    }
  }
};

// The lanes one vector of direct_weight_block's sweep keeps: all its products (`keep`), kernel
// column 0's (`left`) and column 2's (`right`); and the lanes of x's two vectors (from p + shift
// and 16 on) that its loads may read (`xa`, `xb`).
struct StepMasks {
  __mmask16 keep, left, right, xa, xb;
};

// direct_weight_block's sweep over dy's positions [s, e) against x from p + shift: vectors j
// (positions 16 j on) from the one holding s to the one holding e - 1, every load unmasked
// between i0 and i1 (16 positions in [s, e), x's 32 floats from p + shift in its plane). The
// few vectors at either end (at most 2 each) load under masks made here once per band and
// kernel row for every block of channels: made in the loop they were 5% of layer4's time.
struct Sweep {
  int64_t shift, j0, i0, i1, j1;
  std::vector<StepMasks> ends;  // vectors [j0, i0) then [i1, j1)

  Sweep(int64_t s, int64_t e, int64_t shift_, int64_t plane, const RowEdges& rows) : shift(shift_) {
    j0 = floor_div(s, kLanes), j1 = std::max(j0, ceil_div(e, kLanes));
    i0 = std::clamp(std::max(ceil_div(s, kLanes), ceil_div(-shift, kLanes)), j0, j1);
    i1 = std::clamp(std::min(floor_div(e, kLanes), floor_div(plane - shift - 2 * kLanes, kLanes) + 1), i0, j1);
    auto end = [&](int64_t j) {
      const int64_t p = j * kLanes, at = p + shift;
      const __mmask16 keep = lanes_within(p, s, e);
      ends.push_back({keep, static_cast<__mmask16>(rows.masks[2 * j] & keep),
                      static_cast<__mmask16>(rows.masks[2 * j + 1] & keep), lanes_within(at, 0, plane),
                      lanes_within(at + kLanes, 0, plane)});
    };
    for (int64_t j = j0; j < i0; ++j) end(j);
    for (int64_t j = i1; j < j1; ++j) end(j);
  }
};

// One vector of direct_weight_block's sweep: dy's 16 positions from p (4 channels, ds apart)
// times x's 2 channels' 3 kernel columns (x[c] + p + shift + kx), kernel columns 0 and 2 under
// m.left and m.right. At the sweep's ends (`edge`) every load is masked as well (dy to m.keep, x
// to its plane), so nothing outside either is read, and every product under m.keep.
template <bool edge>
__attribute__((always_inline)) inline void direct_step(const float* d, int64_t ds, const float* const (&x)[4],
                                                       int64_t p, int64_t shift, const StepMasks& m,
                                                       __m512 (&acc)[kBlockOut][6]) {
  const float *x0 = x[0], *x1 = x[1], *x0_next = x[2], *x1_next = x[3];
  const int64_t at = p + shift;
  __m512 a0, b0, a1, b1;
  if constexpr (edge) {
    a0 = _mm512_maskz_loadu_ps(m.xa, x0 + at), b0 = _mm512_maskz_loadu_ps(m.xb, x0_next + at);
    a1 = _mm512_maskz_loadu_ps(m.xa, x1 + at), b1 = _mm512_maskz_loadu_ps(m.xb, x1_next + at);
  } else {
    a0 = _mm512_loadu_ps(x0 + at), b0 = _mm512_loadu_ps(x0_next + at);
    a1 = _mm512_loadu_ps(x1 + at), b1 = _mm512_loadu_ps(x1_next + at);
  }
  const __m512 xv[6] = {a0, shifted<1>(a0, b0), shifted<2>(a0, b0), a1, shifted<1>(a1, b1), shifted<2>(a1, b1)};
  for (int o = 0; o < kBlockOut; ++o) {
    const __m512 dv = edge ? _mm512_maskz_loadu_ps(m.keep, d + o * ds + p) : _mm512_loadu_ps(d + o * ds + p);
    for (int c = 0; c < 2; ++c) {
      acc[o][3 * c] = _mm512_mask3_fmadd_ps(dv, xv[3 * c], acc[o][3 * c], m.left);
      acc[o][3 * c + 1] = edge ? _mm512_mask3_fmadd_ps(dv, xv[3 * c + 1], acc[o][3 * c + 1], m.keep)
                               : _mm512_fmadd_ps(dv, xv[3 * c + 1], acc[o][3 * c + 1]);
      acc[o][3 * c + 2] = _mm512_mask3_fmadd_ps(dv, xv[3 * c + 2], acc[o][3 * c + 2], m.right);
    }
  }
}

// weight_block's sums (the same 24) straight from the tensors, at stride 1 with rows as wide in
// x as in dy: over dy's positions of 4 channels' planes (d, ds apart) that `sweep` says, x[c]'s
// kernel column kx at plane position p + shift + kx. Rows then follow one another in both with
// no columns between, so where a kernel column wraps into the neighbouring row the products are
// masked off (RowEdges) instead of multiplied by copied zeros: the copies of x's band and dy's rows
// were a third of layer2's weight gradient (8 channels per group) and a fifth of layer3's.
__attribute__((noinline)) void direct_weight_block(const float* d, int64_t ds, const float* const x[2],
                                                   const Sweep& sweep, const RowEdges& rows, bool first,
                                                   float* const sums[kBlockOut][6]) {
  __m512 acc[kBlockOut][6];
  for (int o = 0; o < kBlockOut; ++o) {
    for (int k = 0; k < 6; ++k) acc[o][k] = _mm512_setzero_ps();
  }
  // x's vectors 16 floats on, through pointers the compiler cannot see are x[c] + 16: else it
  // keeps each vector in a register to be the next step's first (2 loads fewer), and the 33
  // registers that takes spill an accumulator every step.
  const float* x0_next = x[0] + kLanes;
  const float* x1_next = x[1] + kLanes;
  asm("" : "+r"(x0_next), "+r"(x1_next));
  const float* const xs[4] = {x[0], x[1], x0_next, x1_next};
  const int64_t shift = sweep.shift;
  const StepMasks* end = sweep.ends.data();
  for (int64_t j = sweep.j0; j < sweep.i0; ++j) direct_step<true>(d, ds, xs, j * kLanes, shift, *end++, acc);
  const __mmask16* m = rows.masks.data();
  for (int64_t j = sweep.i0; j < sweep.i1; ++j) {
    const StepMasks inner{0xFFFF, load_mask(m + 2 * j), load_mask(m + 2 * j + 1), 0xFFFF, 0xFFFF};
    direct_step<false>(d, ds, xs, j * kLanes, shift, inner, acc);
  }
  for (int64_t j = sweep.i1; j < sweep.j1; ++j) direct_step<true>(d, ds, xs, j * kLanes, shift, *end++, acc);
  for (int o = 0; o < kBlockOut; ++o) {
    for (int k = 0; k < 6; ++k) {
      _mm512_store_ps(sums[o][k], first ? acc[o][k] : _mm512_add_ps(_mm512_load_ps(sums[o][k]), acc[o][k]));
    }
  }
}

// The weight gradient at stride 1, pw = 1 (below), from bands of output rows whose x rows (all
// the group's channels) fit kWeightBandBytes: each is swept cout / 4 x 3 times from L2.
void backward_weight_direct(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
  const int64_t cig = g.cin_g(), cog = g.cout_g(), block = cog * cig * kTaps;
  const RowEdges edges(g.W, g.P());
  const int64_t row_bytes = cig * g.W * int64_t{sizeof(float)};
  const int64_t rows = std::clamp<int64_t>(kWeightBandBytes / row_bytes - 2, 1, g.H_out);
  const int64_t calls = cog / kBlockOut * (cig / 2) * 3;  // direct_weight_block calls per band
  // The x rows that output rows [y0, y1) read, starting at image n, group grp's first channel.
  auto band_prefetcher = [&](int64_t n, int64_t grp, int64_t y0, int64_t y1) {
    const int64_t r0 = std::max<int64_t>(0, y0 - g.ph), r1 = std::min(g.H, y1 + 2 - g.ph);
    if (r1 <= r0) return Prefetcher();
    return Prefetcher(x + (n * g.C_in + grp * cig) * g.HW() + r0 * g.W, g.HW(), (r1 - r0) * g.W, cig, calls);
  };
#pragma omp parallel if (g.groups > 1)
  {
    const Scratch lanes(block * kLanes);  // the group's sums, 16 lanes per weight
    const auto [lo, hi] = thread_share(g.groups);
    for (int64_t grp = lo; grp < hi; ++grp) {
      for (int64_t n = 0; n < g.N; ++n) {
        for (int64_t y0 = 0; y0 < g.H_out; y0 += rows) {
          const int64_t y1 = std::min(g.H_out, y0 + rows);
          // The next band: this image's next rows, the next image's first, or the next group's.
          Prefetcher next;
          if (y1 < g.H_out) {
            next = band_prefetcher(n, grp, y1, std::min(g.H_out, y1 + rows));
          } else if (n + 1 < g.N) {
            next = band_prefetcher(n + 1, grp, 0, std::min(g.H_out, rows));
          } else if (grp + 1 < hi) {
            next = band_prefetcher(0, grp + 1, 0, std::min(g.H_out, rows));
          }
          const bool first = n == 0 && y0 == 0;  // the group's sums start here (no zeroing pass)
          // Kernel row ky sweeps the band's output rows whose row ky is in x: oy + ky - ph in [0, H).
          std::vector<Sweep> sweeps;
          for (int ky = 0; ky < 3; ++ky) {
            const int64_t ys = std::clamp<int64_t>(g.ph - ky, y0, y1), ye = std::clamp<int64_t>(g.H + g.ph - ky, ys, y1);
            sweeps.emplace_back(ys * g.W, ye * g.W, (ky - g.ph) * g.W - 1, g.HW(), edges);
          }
          for (int64_t o0 = 0; o0 < cog; o0 += kBlockOut) {
            const float* d = dy + (n * g.C_out + grp * cog + o0) * g.P();
            for (int64_t i0 = 0; i0 < cig; i0 += 2) {
              const float* xc = x + (n * g.C_in + grp * cig + i0) * g.HW();
              const float* const src[2] = {xc, xc + g.HW()};
              for (int ky = 0; ky < 3; ++ky) {
                float* sums[kBlockOut][6];
                sum_pointers(lanes.get(), cig, o0, i0, ky, sums);
                next.ahead();
                direct_weight_block(d, g.P(), src, sweeps[static_cast<size_t>(ky)], edges, first, sums);
              }
            }
          }
        }
      }
      store_lane_sums(lanes.get(), block, dw + grp * block);
    }
  }
}

}  // namespace

// dw[o][i][ky][kx] = sum over images and output positions of dy[o][oy][ox] x[i][oy sh + ky - ph][ox sw + kx - pw].
//
// With 16k output channels per group and pw = 1 along the channels (conv_grouped_channels.h:
// ResNeXt's layer3-4, both strides). Otherwise, at stride 1 with the width kept (pw = 1: ResNeXt's stride-1 3 x 3s)
// straight from x and dy (direct_weight_block); at stride 2 with pw = 1 (ResNeXt's strided ones)
// straight from x as well (conv_grouped_strided.h). Otherwise from a padded band of x, as the
// forward reads it, and dy's rows copied 4 channels at a time with zeros past each row, so that the kernel sweeps whole vectors
// only (a masked tail per row cost a third of layer3's time); the lanes on zeros multiply x
// values the sums do not need, so an infinite x there makes NaN of weights it would not have
// reached.
void conv2d_backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw) {
  if (channels::applies_to_weight_gradient(g)) return channels::backward_weight(g, dy, x, dw);
  if (g.sh == 1 && g.sw == 1 && g.pw == 1) return backward_weight_direct(g, dy, x, dw);
  if (strided::applies(g)) return strided::backward_weight(g, dy, x, dw);
  const int64_t cig = g.cin_g(), cog = g.cout_g(), block = cog * cig * kTaps;
  const InputBands bands(g, kWeightBandBytes);
  const int64_t row_ld = round_up(g.W_out, kLanes);
  auto channel_ld = [&](int64_t rows) { return round_up(rows * row_ld, kLanes); };
  const int64_t calls = cog / kBlockOut * (cig / 2) * 3;  // weight_block calls per band
#pragma omp parallel if (g.groups > 1)
  {
    const Scratch scratch(bands.scratch());
    const Scratch dy_rows(kBlockOut * channel_ld(bands.rows_out));
    const Scratch lanes(block * kLanes);  // the group's sums, 16 lanes per weight
    const auto [lo, hi] = thread_share(g.groups);
    for (int64_t grp = lo; grp < hi; ++grp) {
      for (int64_t n = 0; n < g.N; ++n) {
        for (int64_t y0 = 0; y0 < g.H_out; y0 += bands.rows_out) {
          const int64_t y1 = std::min(g.H_out, y0 + bands.rows_out);
          const Band band = bands.fill(x, n, grp, y0, y1, scratch.get());
          // The next band: this image's next rows, the next image's first, or the next group's.
          Prefetcher next;
          if (y1 < g.H_out) {
            next = bands.prefetcher(x, n, grp, y1, std::min(g.H_out, y1 + bands.rows_out), calls);
          } else if (n + 1 < g.N) {
            next = bands.prefetcher(x, n + 1, grp, 0, std::min(g.H_out, bands.rows_out), calls);
          } else if (grp + 1 < hi) {
            next = bands.prefetcher(x, 0, grp + 1, 0, std::min(g.H_out, bands.rows_out), calls);
          }
          const int64_t dy_ld = channel_ld(y1 - y0);
          const bool first = n == 0 && y0 == 0;  // the group's sums start here (no zeroing pass)
          const int64_t srs = g.sh * band.phases * band.ld;  // x's band rows from one output row to the next
          for (int64_t o0 = 0; o0 < cog; o0 += kBlockOut) {
            copy_rows(dy + (n * g.C_out + grp * cog + o0) * g.P(), g.P(), g.W_out, y0, y1, kBlockOut, row_ld, dy_ld,
                      dy_rows.get());
            for (int64_t i0 = 0; i0 < cig; i0 += 2) {
              for (int ky = 0; ky < 3; ++ky) {
                const float* src[2];
                for (int c = 0; c < 2; ++c) {
                  src[c] = band.data + (i0 + c) * band.channel_stride() + bands.tap(band, y0, y0, ky, 0);
                }
                float* sums[kBlockOut][6];
                sum_pointers(lanes.get(), cig, o0, i0, ky, sums);
                next.ahead();
                if (band.phases == 1) {
                  weight_block<1>(dy_rows.get(), dy_ld, row_ld, src, 0, srs, y1 - y0, first, sums);
                } else {
                  weight_block<2>(dy_rows.get(), dy_ld, row_ld, src, band.ld, srs, y1 - y0, first, sums);
                }
              }
            }
          }
        }
      }
      store_lane_sums(lanes.get(), block, dw + grp * block);
    }
  }
}

#else  // no AVX-512: conv.cpp's im2col + GEMM takes every grouped convolution

bool enabled() { return false; }
bool applies(const ConvGeometry&) { return false; }
bool applies_to_weight_gradient(const ConvGeometry&) { return false; }
void conv2d_forward(const ConvGeometry&, const float*, const float*, const float*, float*) {
  throw std::logic_error("grouped::conv2d_forward: built without AVX-512 (applies() is false)");
}
void conv2d_backward_input(const ConvGeometry&, const float*, const float*, float*) {
  throw std::logic_error("grouped::conv2d_backward_input: built without AVX-512 (applies() is false)");
}
void conv2d_backward_weight(const ConvGeometry&, const float*, const float*, float*) {
  throw std::logic_error("grouped::conv2d_backward_weight: built without AVX-512 (applies() is false)");
}

#endif

}  // namespace gndet::grouped
