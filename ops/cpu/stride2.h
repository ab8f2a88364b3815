// Splitting a row into its stride-2 phases: the strided convolutions' im2col (ops/cpu/conv.cpp)
// reads every second float of a row, the grouped kernels' padded bands (ops/cpu/conv_grouped.cpp)
// both phases of it; the lane indices that pick and interleave the phases in registers.
#pragma once

#include <algorithm>
#include <cstdint>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gndet::cpu {

#if defined(__AVX512F__)
namespace stride2_detail {
// The first k of 16 lanes (none for k <= 0, all for k >= 16).
// Always inlined: called through a function pointer (as this file did for a while) GCC kept it out
// of line and the splits called it through the PLT, 4 calls per 16 columns: ResNeXt's layer3
// strided forward went from 161 to 108 GFLOP/s.
__attribute__((always_inline)) inline __mmask16 first_lanes(int64_t k) {
  return k >= 16 ? __mmask16(0xFFFF) : k <= 0 ? __mmask16(0) : __mmask16((1u << k) - 1);
}
}  // namespace stride2_detail

// vpermt2ps indices over two vectors (lanes 0-31): the even lanes, the odd lanes, and the
// inverse (lanes 0-7 of the first interleaved with lanes 0-7 of the second, then lanes 8-15).
__attribute__((always_inline)) inline __m512i pick_even_lanes() {
  return _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
}
__attribute__((always_inline)) inline __m512i pick_odd_lanes() {
  return _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
}
__attribute__((always_inline)) inline __m512i interleave_low_lanes() {
  return _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
__attribute__((always_inline)) inline __m512i interleave_high_lanes() {
  return _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}
#endif

// d[j] = row[2 j] for j in [0, n), reading no further than row[available - 1]
// (available >= 2 n - 1): 16 at a time with AVX-512, the last ones under masks.
inline void deinterleave_stride2(const float* row, int64_t n, int64_t available, float* d) {
#if defined(__AVX512F__)
  constexpr int64_t kLanes = 16;
  using stride2_detail::first_lanes;
  const __m512i even = pick_even_lanes();
  for (int64_t j = 0; j < n; j += kLanes) {
    const float* s = row + 2 * j;
    const int64_t left = available - 2 * j;
    const __m512 lo = _mm512_maskz_loadu_ps(first_lanes(left), s);
    const __m512 hi = _mm512_maskz_loadu_ps(first_lanes(std::max<int64_t>(0, left - kLanes)), s + kLanes);
    _mm512_mask_storeu_ps(d + j, first_lanes(n - j), _mm512_permutex2var_ps(lo, even, hi));
  }
#else
  (void)available;
  for (int64_t j = 0; j < n; ++j) d[j] = row[2 * j];
#endif
}

// even[j] = row[first + 2 j] and odd[j] = row[first + 2 j + 1] for j in [0, n): a row's columns
// split by phase, 0 where a column is outside [0, W) (first may be negative: left padding). Two
// vectors of the row make 16 of each phase; masked loads read nothing outside the row. (A pass
// per phase through deinterleave_stride2, with each phase's bounds found by division per row,
// made the copy a third of ResNeXt's layer3 strided forward: 12 cycles per vector of the row.)
inline void split_stride2_padded(const float* row, int64_t first, int64_t W, int64_t n, float* even, float* odd) {
#if defined(__AVX512F__)
  constexpr int64_t kLanes = 16;
  using stride2_detail::first_lanes;
  // Lanes l whose column at + l is inside the row.
  const auto inside = [&](int64_t at) { return static_cast<__mmask16>(first_lanes(W - at) & ~first_lanes(-at)); };
  const __m512i pick_even = pick_even_lanes();
  const __m512i pick_odd = pick_odd_lanes();
  for (int64_t j = 0; j < n; j += kLanes) {
    const int64_t at = first + 2 * j;  // the column of lane 0
    const __m512 lo = _mm512_maskz_loadu_ps(inside(at), row + at);
    const __m512 hi = _mm512_maskz_loadu_ps(inside(at + kLanes), row + at + kLanes);
    _mm512_mask_storeu_ps(even + j, first_lanes(n - j), _mm512_permutex2var_ps(lo, pick_even, hi));
    _mm512_mask_storeu_ps(odd + j, first_lanes(n - j), _mm512_permutex2var_ps(lo, pick_odd, hi));
  }
#else
  for (int64_t j = 0; j < n; ++j) {
    const int64_t c = first + 2 * j;
    even[j] = c >= 0 && c < W ? row[c] : 0.0f;
    odd[j] = c + 1 >= 0 && c + 1 < W ? row[c + 1] : 0.0f;
  }
#endif
}

}  // namespace gndet::cpu
