// What the grouped 3x3 kernels (conv_grouped.cpp, conv_grouped_strided.cpp,
// conv_grouped_channels.cpp) share: AVX-512 lane masks and masked loads the compiler does not see
// through, per-thread scratch, each thread's share of the work items (and the items of rows the
// direct kernels take), and the weight gradient's sums across lanes in double.
// Internal to ops/cpu; built only with AVX-512.
#pragma once

#if defined(__AVX512F__)
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

#include "ops/conv_geometry.h"

namespace gndet::grouped::simd {

constexpr int kLanes = 16;
constexpr int kTaps = 9;  // 3x3

inline int64_t round_up(int64_t a, int64_t m) { return (a + m - 1) / m * m; }
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
inline int64_t ceil_div(int64_t a, int64_t b) { return -floor_div(-a, b); }
inline __mmask16 lanes_mask(int64_t n) { return n >= kLanes ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : __mmask16((1u << n) - 1); }
// Lanes l with first + l in [lo, hi).
inline __mmask16 lanes_within(int64_t first, int64_t lo, int64_t hi) {
  return static_cast<__mmask16>(lanes_mask(hi - first) & ~lanes_mask(lo - first));
}

// One thread's scratch, aligned to a cache line: band rows (ld a multiple of 16 floats) then start
// on one, and the loads of the taps in kernel column 0 do not straddle two lines.
class Scratch {
 public:
  explicit Scratch(int64_t floats)
      : data_(static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(round_up(floats, kLanes)) * sizeof(float)))) {
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~Scratch() { std::free(data_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  float* get() const { return data_; }

 private:
  float* data_;
};

// *m into a mask register by one load (GCC 12 loads it into a general register first, then moves it
// over on port 5, where it takes the place of a multiply-add). The pointer goes in as a register,
// not as a memory operand: with one, GCC 12 stored the accumulators before every such load.
__attribute__((always_inline)) inline __mmask16 load_mask(const __mmask16* m) {
  __mmask16 k;
  asm("kmovw (%1), %0" : "=k"(k) : "r"(m));
  return k;
}

// The lanes of p[0, 16) under m, zeros elsewhere (nothing read there), as a load the compiler
// does not see: with _mm512_maskz_loadu_ps in the block's loop GCC 12 stored the 24 accumulators
// at every tap (2.2x slower). Only for memory nothing writes while the kernel runs.
__attribute__((always_inline)) inline __m512 masked_load(__mmask16 m, const float* p) {
  __m512 v;
  asm("vmovups (%1), %0%{%2%}%{z%}" : "=v"(v) : "r"(p), "Yk"(m));
  return v;
}

// Asks for the cache lines of `channels` output rows [p, p + floats) (channel c's at p + c cs) to
// be written: a block's stores then find their lines owned in L1 instead of each waiting for its
// read for ownership when the block ends (prefetchw; prefetches never fault). As volatile asm:
// GCC 12 dropped __builtin_prefetch (and _mm_prefetch) called from a lambda, whose call it took
// for one without effects.
__attribute__((always_inline)) inline void prefetch_for_writing(const float* p, int64_t cs, int channels, int64_t floats) {
  auto ask = [](const char* line) { asm volatile("prefetchw (%0)" : : "r"(line)); };
  for (int c = 0; c < channels; ++c) {
    const char* first = reinterpret_cast<const char*>(p + c * cs);
    const char* end = reinterpret_cast<const char*>(p + c * cs + floats);
    for (const char* line = first; line < end; line += 64) ask(line);
    // The line of the row's last float where `first` is not on a line's start.
    if ((reinterpret_cast<uintptr_t>(first) & 63) != 0 && floats > 0) ask(end - 1);
  }
}

// One group's weights (cout_g x cin_g x 9 from wg) as a direct kernel's blocks read them: the
// channels along a block's vector (output channels with `outputs`, the forwards'; else input
// channels, the input gradients') `per_vector` at a time, each in `copies` lanes side by side
// (2: the pair blocks), per block of them, per channel of the other kind and tap:
// packed[((along / per_vector * others + other) * 9 + t) * per_vector * copies + along % per_vector * copies + k].
template <bool outputs, int per_vector, int copies = 1>
void pack_weights(const float* wg, int64_t cog, int64_t cig, float* packed) {
  const int64_t others = outputs ? cig : cog;
  for (int64_t o = 0; o < cog; ++o) {
    for (int64_t i = 0; i < cig; ++i) {
      const int64_t along = outputs ? o : i, other = outputs ? i : o;
      for (int t = 0; t < kTaps; ++t) {
        float* lanes = packed + ((along / per_vector * others + other) * kTaps + t) * per_vector * copies +
                       along % per_vector * copies;
        for (int k = 0; k < copies; ++k) lanes[k] = wg[(o * cig + i) * kTaps + t];
      }
    }
  }
}

// [lo, hi): thread t's contiguous share of `items` (the next item a thread takes is its own next one,
// which the prefetching needs to know).
inline std::pair<int64_t, int64_t> thread_share(int64_t items) {
  const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
  return {items * t / T, items * (t + 1) / T};
}

// Output rows per work item of the direct kernels' forward (dx rows: twice as many): each (image,
// group) in a few items, so that two threads' shares differ by little.
constexpr int64_t kRowsPerItem = 8;

// One work item: rows [y0, y1) of image n's group grp (n < 0: none).
struct Item {
  int64_t n = -1, grp = 0, y0 = 0, y1 = 0;
};

// body(item, next, packed) over the work items of `rows` rows (of `height`) of one (image, group),
// each thread through a contiguous run of them: `next` is the thread's following item, whose first
// rows the body asks for during its last, and `packed` the item's group's weights as
// pack(w_group, cout_g, cin_g, out) lays them out (packed once per group and thread). The
// direct kernels of conv_grouped_strided.cpp and conv_grouped_channels.cpp work this way.
template <class Body>
void for_each_item(const ConvGeometry& g, int64_t height, int64_t rows, const float* w,
                   void (*pack)(const float*, int64_t, int64_t, float*), Body body) {
  const int64_t cig = g.cin_g(), cog = g.cout_g();
  const int64_t count = ceil_div(height, rows), per_image = g.groups * count, items = g.N * per_image;
  auto item = [&](int64_t i) {
    const int64_t y0 = i % count * rows;
    return Item{i / per_image, i % per_image / count, y0, std::min(height, y0 + rows)};
  };
#pragma omp parallel if (items > 1)
  {
    // Aligned: blocks may load whole vectors of it; a vector's lanes for each 16 or fewer output
    // channels (the pair blocks' 8 take all 16, each weight twice).
    const Scratch packed(round_up(cog, kLanes) * cig * kTaps);
    int64_t packed_group = -1;
    const auto [lo, hi] = thread_share(items);
    for (int64_t i = lo; i < hi; ++i) {
      const Item it = item(i);
      if (it.grp != packed_group) pack(w + it.grp * cog * cig * kTaps, cog, cig, packed.get()), packed_group = it.grp;
      body(it, i + 1 < hi ? item(i + 1) : Item{}, packed.get());
    }
  }
}

// The sums of 8 vectors of 16 floats (v[j * 16, j * 16 + 16) for j < 8), in double: each vector's
// halves added, then the 8 partial vectors folded into one by a fixed tree of 3 transposing
// steps (a horizontal sum per weight took 6% of layer4's weight gradient, 32 channels per group).
inline __m512d lane_sums(const float* v) {
  // The zero-masking forms with every lane kept: the plain ones' undefined merge source makes
  // GCC 12 warn (maybe-uninitialized).
  constexpr __mmask8 all = 0xFF;
  __m512d d[8];
  for (int j = 0; j < 8; ++j) {
    d[j] = _mm512_add_pd(_mm512_maskz_cvtps_pd(all, _mm256_load_ps(v + j * kLanes)),
                         _mm512_maskz_cvtps_pd(all, _mm256_load_ps(v + j * kLanes + 8)));
  }
  // Pairs: lanes [a0+a1, b0+b1, a2+a3, b2+b3, ...] for (a, b) = (d0, d1), (d2, d3), ...
  __m512d t[4];
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_add_pd(_mm512_maskz_unpacklo_pd(all, d[2 * j], d[2 * j + 1]),
                         _mm512_maskz_unpackhi_pd(all, d[2 * j], d[2 * j + 1]));
  }
  // Then 128-bit blocks: block k of fold(a, b) is the sum of blocks 2k and 2k + 1 of (a, a, b, b).
  auto fold = [](__m512d a, __m512d b) {
    return _mm512_add_pd(_mm512_maskz_shuffle_f64x2(all, a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_maskz_shuffle_f64x2(all, a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  };
  return fold(fold(t[0], t[1]), fold(t[2], t[3]));
}

// A group's weights from its sums: across the lanes, in double, 8 weights at a time (`block`,
// the group's weight count, is a multiple of 4 x 4 x 9).
inline void store_lane_sums(const float* lanes, int64_t block, float* dw) {
  for (int64_t e = 0; e < block; e += 8) {
    _mm256_storeu_ps(dw + e, _mm512_maskz_cvtpd_ps(0xFF, lane_sums(lanes + e * kLanes)));
  }
}

}  // namespace gndet::grouped::simd

#endif
