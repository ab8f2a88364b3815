// CPU max pooling: one task per (n, c) plane, so the backward scatter never races.
#include <cmath>
#include <limits>
#include <type_traits>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "ops/pool.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

// The ResNet stem's pooling (3 x 3, stride 2 along rows), 16 outputs at a time from the first
// output whose window lies inside the row until the loads would leave it; rows [h_lo, h_hi) of
// the window. Lane by lane the same scan as the loop below (taps in row-major order, the first
// maximum kept, a NaN wins and stays), so values and indices are identical. Does outputs
// [(pad + 1) / 2, returned value); the loop below does the others.
int64_t max_pool_3x3s2_row(const float* plane, int64_t W, int64_t h_lo, int64_t h_hi, int64_t pad, int64_t Wo, float* out,
                           int64_t* idx) {
#if defined(__AVX512F__)
  const int64_t first = (pad + 1) / 2;  // 2 ow - pad >= 0
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __m512i lane2 = _mm512_slli_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), 1);
  int64_t ow = first;
  for (; ow + 16 <= Wo && 2 * ow - pad + 34 <= W; ow += 16) {
    const int64_t b = 2 * ow - pad;  // the first window's first column
    __m512 best = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
    __m512i at = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(h_lo * W + b)), lane2);
    for (int64_t ih = h_lo; ih < h_hi; ++ih) {
      const float* r = plane + ih * W + b;
      const __m512 l0 = _mm512_loadu_ps(r), l1 = _mm512_loadu_ps(r + 16);
      const __m512 m0 = _mm512_loadu_ps(r + 2), m1 = _mm512_loadu_ps(r + 18);
      const __m512 taps[3] = {_mm512_permutex2var_ps(l0, even, l1), _mm512_permutex2var_ps(l0, odd, l1),
                              _mm512_permutex2var_ps(m0, even, m1)};
      for (int j = 0; j < 3; ++j) {
        const __mmask16 best_nan = _mm512_cmp_ps_mask(best, best, _CMP_UNORD_Q);
        const __mmask16 take = _mm512_cmp_ps_mask(taps[j], best, _CMP_GT_OQ) |
                               (_mm512_cmp_ps_mask(taps[j], taps[j], _CMP_UNORD_Q) & static_cast<__mmask16>(~best_nan));
        best = _mm512_mask_blend_ps(take, best, taps[j]);
        const __m512i here = _mm512_add_epi32(_mm512_set1_epi32(static_cast<int32_t>(ih * W + b + j)), lane2);
        at = _mm512_mask_blend_epi32(take, at, here);
      }
    }
    _mm512_storeu_ps(out + ow, best);
    _mm512_storeu_si512(idx + ow, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(at)));
    _mm512_storeu_si512(idx + ow + 8, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(at, 1)));
  }
  return ow;
#else
  (void)plane, (void)W, (void)h_lo, (void)h_hi, (void)pad, (void)Wo, (void)out, (void)idx;
  return (pad + 1) / 2;
#endif
}

void max_pool2d_cpu(const Tensor& out, const Tensor& indices, const Tensor& x, Pool2dParams p) {
  const int64_t planes = x.size(0) * x.size(1), H = x.size(2), W = x.size(3);
  const int64_t Ho = out.size(2), Wo = out.size(3);
  dispatch_floating(x.dtype(), "max_pool2d", [&]<class T>() {
    const T* in = static_cast<const T*>(x.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    int64_t* idx = static_cast<int64_t*>(indices.raw_data());
#pragma omp parallel for schedule(static) if (out.numel() * p.kernel[0] * p.kernel[1] >= cpu::kParallelGrain)
    for (int64_t q = 0; q < planes; ++q) {
      const T* plane = in + q * H * W;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const int64_t h0 = oh * p.stride[0] - p.padding[0];
        const int64_t h_lo = std::max<int64_t>(h0, 0), h_hi = std::min(h0 + p.kernel[0], H);
        int64_t done_from = Wo, done_to = Wo;  // outputs of this row the vector path has done
        if constexpr (std::is_same_v<T, float>) {
          if (p.kernel[1] == 3 && p.stride[1] == 2 && p.padding[1] <= 1) {
            done_from = (p.padding[1] + 1) / 2;
            done_to = max_pool_3x3s2_row(plane, W, h_lo, h_hi, p.padding[1], Wo, o + (q * Ho + oh) * Wo, idx + (q * Ho + oh) * Wo);
          }
        }
        for (int64_t ow = 0; ow < Wo; ++ow) {
          if (ow == done_from && done_to > done_from) ow = done_to;
          if (ow >= Wo) break;
          const int64_t w0 = ow * p.stride[1] - p.padding[1];
          const int64_t w_lo = std::max<int64_t>(w0, 0), w_hi = std::min(w0 + p.kernel[1], W);
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_at = h_lo * W + w_lo;  // every window overlaps the input (see pooled_size)
          bool found_nan = false;
          for (int64_t ih = h_lo; ih < h_hi && !found_nan; ++ih) {
            for (int64_t iw = w_lo; iw < w_hi; ++iw) {
              const T v = plane[ih * W + iw];
              if (v > best || std::isnan(v)) {
                best = v;
                best_at = ih * W + iw;
                found_nan = std::isnan(v);  // NaN wins and stays, as in PyTorch
                if (found_nan) break;
              }
            }
          }
          o[(q * Ho + oh) * Wo + ow] = best;
          idx[(q * Ho + oh) * Wo + ow] = best_at;
        }
      }
    }
  });
}

void max_pool2d_backward_cpu(const Tensor& dx, const Tensor& dy, const Tensor& indices) {
  const int64_t planes = dx.size(0) * dx.size(1), HW = dx.size(2) * dx.size(3);
  const int64_t P = dy.size(2) * dy.size(3);
  dispatch_floating(dx.dtype(), "max_pool2d_backward", [&]<class T>() {
    T* gx = static_cast<T*>(dx.raw_data());
    const T* gy = static_cast<const T*>(dy.raw_data());
    const int64_t* idx = static_cast<const int64_t*>(indices.raw_data());
#pragma omp parallel for schedule(static) if (dx.numel() >= cpu::kParallelGrain)
    for (int64_t q = 0; q < planes; ++q) {
      T* plane = gx + q * HW;
      std::fill(plane, plane + HW, T(0));
      for (int64_t k = 0; k < P; ++k) plane[idx[q * P + k]] += gy[q * P + k];
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(max_pool2d_kernel, CPU, max_pool2d_cpu);
GNDET_REGISTER_KERNEL(max_pool2d_backward_kernel, CPU, max_pool2d_backward_cpu);

}  // namespace gndet
