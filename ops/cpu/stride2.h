// Splitting a row into its stride-2 phase: the strided convolutions' im2col (ops/cpu/conv.cpp) and
// the grouped kernels' padded bands (ops/cpu/conv_grouped.cpp) read every second float of a row.
#pragma once

#include <algorithm>
#include <cstdint>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gndet::cpu {

// d[j] = row[2 j] for j in [0, n), reading no further than row[available - 1]
// (available >= 2 n - 1): 16 at a time with AVX-512, the last ones under masks.
inline void deinterleave_stride2(const float* row, int64_t n, int64_t available, float* d) {
#if defined(__AVX512F__)
  constexpr int64_t kLanes = 16;
  const auto mask = [](int64_t k) {
    return k >= kLanes ? __mmask16(0xFFFF) : k <= 0 ? __mmask16(0) : __mmask16((1u << k) - 1);
  };
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  for (int64_t j = 0; j < n; j += kLanes) {
    const float* s = row + 2 * j;
    const int64_t left = available - 2 * j;
    const __m512 lo = _mm512_maskz_loadu_ps(mask(left), s);
    const __m512 hi = _mm512_maskz_loadu_ps(mask(std::max<int64_t>(0, left - kLanes)), s + kLanes);
    _mm512_mask_storeu_ps(d + j, mask(n - j), _mm512_permutex2var_ps(lo, even, hi));
  }
#else
  (void)available;
  for (int64_t j = 0; j < n; ++j) d[j] = row[2 * j];
#endif
}

}  // namespace gndet::cpu
