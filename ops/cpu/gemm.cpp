// float32 GEMM: see gemm.h for what and why. This file: packing, the micro-kernel, the loops.
#include "ops/cpu/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <string_view>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace gndet::cpu::gemm {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// Each thread's packing space, 64-byte aligned, made on its first GEMM: the B block (L2), one A
// panel (L1), scratch for B's pieces (a row of the block, or 8 columns), and zeros for padding.
struct Buffers {
  static constexpr int64_t kBlock = kKc * kNc;
  static constexpr int64_t kPanel = kKc * kMr;
  static constexpr int64_t kScratch = std::max(kNc, 8 * kKc);
  float* b_block;
  float* a_panel;
  float* scratch;
  float* zeros;  // kKc zeros: the missing rows of an A panel, the missing columns of a B panel
  Buffers() {
    const size_t bytes = sizeof(float) * static_cast<size_t>(kBlock + kPanel + kScratch + kKc);
    float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (p == nullptr) throw std::bad_alloc();
    b_block = p;
    a_panel = b_block + kBlock;
    scratch = a_panel + kPanel;
    zeros = scratch + kScratch;
    std::fill(zeros, zeros + kKc, 0.0f);
  }
  ~Buffers() { std::free(b_block); }
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;
};

Buffers& thread_buffers() {
  thread_local Buffers buffers;  // a few pointers of TLS, the arrays on the heap: the library stays dlopen-able
  return buffers;
}

// dst[t * dst_stride + i] = src[i][k + t] for i, t < 8: eight columns of 8 rows, transposed.
inline void transpose8(const float* const* src, int64_t k, float* dst, int64_t dst_stride) {
#if defined(__AVX512F__)
  const __m256 r0 = _mm256_loadu_ps(src[0] + k), r1 = _mm256_loadu_ps(src[1] + k);
  const __m256 r2 = _mm256_loadu_ps(src[2] + k), r3 = _mm256_loadu_ps(src[3] + k);
  const __m256 r4 = _mm256_loadu_ps(src[4] + k), r5 = _mm256_loadu_ps(src[5] + k);
  const __m256 r6 = _mm256_loadu_ps(src[6] + k), r7 = _mm256_loadu_ps(src[7] + k);
  // Pairs of rows interleaved, then quadruples, then the 128-bit halves put in place.
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 s0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), s1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), s3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), s5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
  const __m256 s6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), s7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
  _mm256_storeu_ps(dst + 0 * dst_stride, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(dst + 1 * dst_stride, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(dst + 2 * dst_stride, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(dst + 3 * dst_stride, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(dst + 4 * dst_stride, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(dst + 5 * dst_stride, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(dst + 6 * dst_stride, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(dst + 7 * dst_stride, _mm256_permute2f128_ps(s3, s7, 0x31));
#else
  for (int t = 0; t < 8; ++t) {
    for (int i = 0; i < 8; ++i) dst[t * dst_stride + i] = src[i][k + t];
  }
#endif
}

// Eight sequences (rows of A, columns of B), each contiguous over k in [0, kc), interleaved:
// dst[k * dst_stride + i] = src[i][k].
void interleave8(const float* const* src, int64_t kc, float* dst, int64_t dst_stride) {
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) transpose8(src, k, dst + k * dst_stride, dst_stride);
  for (; k < kc; ++k) {
    for (int i = 0; i < 8; ++i) dst[k * dst_stride + i] = src[i][k];
  }
}

// The (kc x kMr) panel of A's rows [i0, i0 + mr) and columns [k0, k0 + kc): panel[k * kMr + i].
void pack_a(const Strided& a, int64_t i0, int64_t mr, int64_t k0, int64_t kc, float* panel, const float* zeros) {
  if (a.cs == 1) {  // rows contiguous: transpose 8 x 8 blocks
    const float* rows[kMr];
    for (int64_t i = 0; i < kMr; ++i) rows[i] = i < mr ? a.p + (i0 + i) * a.rs + k0 : zeros;
    interleave8(rows, kc, panel, kMr);
  } else if (a.rs == 1) {  // columns contiguous: copy kMr at a time
    for (int64_t k = 0; k < kc; ++k) {
      const float* src = a.p + (k0 + k) * a.cs + i0;
      float* dst = panel + k * kMr;
      if (mr == kMr) {
        std::memcpy(dst, src, sizeof(float) * kMr);
      } else {
        for (int64_t i = 0; i < kMr; ++i) dst[i] = i < mr ? src[i] : 0.0f;
      }
    }
  } else {
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t i = 0; i < kMr; ++i) panel[k * kMr + i] = i < mr ? a.p[(i0 + i) * a.rs + (k0 + k) * a.cs] : 0.0f;
    }
  }
}

// The width of panel q of a block nc columns wide: kNr, except the last one, which is only as many
// 16-float vectors as its columns need (a block of 64 columns is one panel of 48 and one of 16, not
// two of 48 with a third of the arithmetic spent on zeros: the weight gradients of 1 x 1
// convolutions from 64 channels, the stem's 147 columns, 256 = 5 x 48 + 16).
inline int64_t panel_width(int64_t nc, int64_t q) {
  const int64_t w = std::min(kNr, nc - q * kNr);
  return w == kNr ? kNr : round_up(w, 16);
}

// dst[0 .. width) = src[0 .. w) and zeros after (width: a multiple of 16, at most kNr).
inline void copy_panel_row(const float* src, int64_t w, float* dst, int64_t width) {
#if defined(__AVX512F__)
  for (int64_t v = 0; v < width / 16; ++v) {
    const int64_t n = std::clamp<int64_t>(w - 16 * v, 0, 16);
    const __mmask16 m = static_cast<__mmask16>((uint32_t{1} << n) - 1);
    _mm512_store_ps(dst + 16 * v, _mm512_maskz_loadu_ps(m, src + 16 * v));
  }
#else
  std::memcpy(dst, src, sizeof(float) * static_cast<size_t>(w));
  std::fill(dst + w, dst + width, 0.0f);
#endif
}

// B's rows [k0, k0 + kc) and columns [n0, n0 + nc) as panels: panel q holds columns
// n0 + q kNr ... and starts at block + q kc kNr, element (k, j) at k * width + j, zero past nc
// (width: panel_width(nc, q)).
void pack_b(const BSource& b, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float* block, Buffers& buf) {
  const int64_t panels = ceil_div(nc, kNr);
  if (b.kind == BSource::Kind::kRows) {
    for (int64_t k = 0; k < kc; ++k) {
      const float* row = b.piece(k0 + k, n0, nc, buf.scratch);
      for (int64_t q = 0; q < panels; ++q) {
        const int64_t width = panel_width(nc, q);
        copy_panel_row(row + q * kNr, std::min(kNr, nc - q * kNr), block + q * kc * kNr + k * width, width);
      }
    }
    return;
  }
  for (int64_t q = 0; q < panels; ++q) {
    const int64_t width = panel_width(nc, q);
    for (int64_t j8 = 0; j8 < width; j8 += 8) {
      const float* cols[8];
      for (int64_t t = 0; t < 8; ++t) {
        const int64_t n = q * kNr + j8 + t;
        cols[t] = n < nc ? b.piece(n0 + n, k0, kc, buf.scratch + t * kKc) : buf.zeros;
      }
      interleave8(cols, kc, block + q * kc * kNr + j8, width);
    }
  }
}

// Lines of B's source for a micro-kernel call to ask for while it runs (see run_sgemm): `lines`
// of them, one every `every` steps, row after row of `per_row` lines, the rows `stride_bytes`
// apart from address `at` (an integer: the lines may start before B's first float, prefetches
// never fault, and no pointer is formed outside the array).
struct Ahead {
  uintptr_t at = 0;
  int64_t lines = 0, per_row = 1, stride_bytes = 0, every = 1;
};

#if defined(__AVX512F__)
static_assert(kNr % 16 == 0 && kMr == 8, "the micro-kernel holds kMr x kNr/16 vectors");

// C tile (mr x nr at c, rows ldc apart) [+]= the kMr x 16 V product of one A panel and one B panel
// (16 V columns wide). Every element is the same chain of FMAs whatever V is.
template <int V>
void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, float* c, int64_t ldc, int64_t mr,
                  int64_t nr, bool load_c, const float* bias, const Ahead& asked) {
  // Copied field by field: a struct the caller stored as parts, read back as one vector, would
  // miss store forwarding (~20 cycles a call).
  uintptr_t row = asked.at;
  int64_t lines = asked.lines, line = 0;
  const int64_t per_row = asked.per_row, stride_bytes = asked.stride_bytes, every = asked.every;
  int64_t next_ask = lines > 0 ? 0 : kc;
  __m512 acc[kMr][V];
#pragma GCC unroll 8
  for (int i = 0; i < kMr; ++i) {
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  }
  for (int64_t i = 0; i < mr; ++i) {  // the C tile is needed at the end: fetch it meanwhile
    for (int v = 0; v < V; ++v) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16 * v), _MM_HINT_T0);
  }
  for (int64_t k = 0; k < kc; ++k) {  // (software prefetches of the packed B and unrolling measured no faster)
    if (k == next_ask) {
      _mm_prefetch(reinterpret_cast<const char*>(row + 64 * line), _MM_HINT_T1);  // into L2: L1 holds the A panel
      if (++line == per_row) {
        line = 0;
        row += stride_bytes;
      }
      next_ask = --lines > 0 ? k + every : kc;
    }
    __m512 bv[V];
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < kMr; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += kMr;
    b += 16 * V;
  }
  __mmask16 mask[V];
  for (int v = 0; v < V; ++v) {
    const int64_t w = std::clamp<int64_t>(nr - 16 * v, 0, 16);
    mask[v] = static_cast<__mmask16>((uint32_t{1} << w) - 1);
  }
  for (int64_t i = 0; i < mr; ++i) {
    float* row = c + i * ldc;
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v) {
      __m512 x = acc[i][v];
      if (load_c) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(mask[v], row + 16 * v));
      if (bias != nullptr) x = _mm512_add_ps(x, _mm512_set1_ps(bias[i]));
      _mm512_mask_storeu_ps(row + 16 * v, mask[v], x);
    }
  }
}

// The micro-kernel for a panel `width` columns wide (a multiple of 16, at most kNr).
void micro_kernel(int64_t width, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr, int64_t nr,
                  bool load_c, const float* bias, const Ahead& ahead) {
  static_assert(kNr == 48, "one case per width below");
  switch (width) {
    case 16: return micro_kernel<1>(kc, a, b, c, ldc, mr, nr, load_c, bias, ahead);
    case 32: return micro_kernel<2>(kc, a, b, c, ldc, mr, nr, load_c, bias, ahead);
    default: return micro_kernel<3>(kc, a, b, c, ldc, mr, nr, load_c, bias, ahead);
  }
}
#else
void micro_kernel(int64_t width, int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int64_t mr, int64_t nr,
                  bool load_c, const float* bias, const Ahead&) {
  float acc[kMr][kNr] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int64_t i = 0; i < kMr; ++i) {
      for (int64_t j = 0; j < width; ++j) acc[i][j] += a[k * kMr + i] * b[k * width + j];
    }
  }
  for (int64_t i = 0; i < mr; ++i) {
    for (int64_t j = 0; j < nr; ++j) {
      float x = acc[i][j];
      if (load_c) x += c[i * ldc + j];
      if (bias != nullptr) x += bias[i];
      c[i * ldc + j] = x;
    }
  }
}
#endif

// `rows` (may be null): B itself, in memory with contiguous rows. Packing a block then waits on
// every line it reads (L3 or memory: perf put a third of layer1's 256 -> 64 forward, 8 A panels
// per block, in pack_b), so the micro-kernel calls of each block ask for the next block's lines
// meanwhile, a share each, and packing it reads L2. The blocks are kNcAhead wide, so that the
// packed block and the next one's source fit in L2 together.
template <class APanel>
void run_sgemm(int64_t M, int64_t N, int64_t K, APanel a_panel, const BSource& b, float* c, int64_t ldc,
               bool accumulate, const float* row_bias, const Strided* rows = nullptr) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // an empty sum
    for (int64_t i = 0; i < M; ++i) {
      float* row = c + i * ldc;
      const float add = row_bias != nullptr ? row_bias[i] : 0.0f;
      for (int64_t j = 0; j < N; ++j) row[j] = (accumulate ? row[j] : 0.0f) + add;
    }
    return;
  }
  Buffers& buf = thread_buffers();
  // Equal blocks, so that no block is a sliver: 1000 columns are 2 x 528, not 960 + 40.
  const int64_t nc_max = round_up(ceil_div(N, ceil_div(N, rows != nullptr ? kNcAhead : kNc)), kNr);
  const int64_t kc_max = ceil_div(K, ceil_div(K, kKc));
  const int64_t calls = ceil_div(M, kMr) * ceil_div(nc_max, kNr);  // micro-kernel calls per block
  for (int64_t jc = 0; jc < N; jc += nc_max) {
    const int64_t nc = std::min(nc_max, N - jc);
    for (int64_t pc = 0; pc < K; pc += kc_max) {
      const int64_t kc = std::min(kc_max, K - pc);
      pack_b(b, pc, kc, jc, nc, buf.b_block, buf);
      const bool load_c = accumulate || pc > 0;
      // The next block (the next rows of these columns, else the first rows of the next ones):
      // whole rows of it per micro-kernel call, all asked for before the last A panel's calls.
      Ahead ahead;
      int64_t share = 0, left = 0;  // rows per call, rows not yet handed out
      if (rows != nullptr) {
        const bool down = pc + kc < K;
        const int64_t next_pc = down ? pc + kc : 0, next_jc = down ? jc : jc + nc;
        if (next_jc < N) {
          const int64_t next_kc = std::min(kc_max, K - next_pc), next_nc = std::min(nc_max, N - next_jc);
          const float* first = rows->p + next_pc * rows->rs + next_jc;
          ahead.at = reinterpret_cast<uintptr_t>(first) / 64 * 64;
          ahead.per_row = static_cast<int64_t>((reinterpret_cast<uintptr_t>(first + next_nc) + 63) / 64 - ahead.at / 64);
          ahead.stride_bytes = static_cast<int64_t>(sizeof(float)) * rows->rs;
          share = ceil_div(next_kc, std::max<int64_t>(1, calls - ceil_div(nc, kNr)));
          left = next_kc;
          ahead.every = std::max<int64_t>(1, kc / (share * ahead.per_row));  // (lines past kc a call: not asked for)
        }
      }
      for (int64_t ir = 0; ir < M; ir += kMr) {  // one A panel stays in L1 while the B panels stream from L2
        const int64_t mr = std::min(kMr, M - ir);
        const float* panel = a_panel(ir, mr, pc, kc, buf);
        const float* bias = pc == 0 && row_bias != nullptr ? row_bias + ir : nullptr;
        for (int64_t jr = 0; jr < nc; jr += kNr) {
          Ahead part;
          if (left > 0) {
            const int64_t n = std::min(share, left);
            part = ahead;
            part.lines = n * ahead.per_row;
            ahead.at += static_cast<uintptr_t>(n * ahead.stride_bytes);
            left -= n;
          }
          micro_kernel(panel_width(nc, jr / kNr), kc, panel, buf.b_block + (jr / kNr) * kc * kNr, c + ir * ldc + jc + jr,
                       ldc, mr, std::min(kNr, nc - jr), load_c, bias, part);
        }
      }
    }
  }
}

// B in memory as a BSource: rows when they are contiguous, else columns, else element by element.
template <class F>
void with_b_source(const Strided& b, F&& f) {
  if (b.cs == 1) {
    auto row = [&](int64_t k, int64_t n0, int64_t, float*) { return b.p + k * b.rs + n0; };
    return f(BSource{BSource::Kind::kRows, row});
  }
  if (b.rs == 1) {
    auto column = [&](int64_t n, int64_t k0, int64_t, float*) { return b.p + n * b.cs + k0; };
    return f(BSource{BSource::Kind::kColumns, column});
  }
  auto row = [&](int64_t k, int64_t n0, int64_t n, float* scratch) {
    for (int64_t j = 0; j < n; ++j) scratch[j] = b.p[k * b.rs + (n0 + j) * b.cs];
    return static_cast<const float*>(scratch);
  };
  f(BSource{BSource::Kind::kRows, row});
}

// With A packed, panel ir's columns [pc, pc + kc) are contiguous: no copy at all. `rows`: see run_sgemm.
void sgemm_packed(int64_t M, int64_t N, int64_t K, const PackedA& a, const BSource& b, float* c, int64_t ldc,
                  bool accumulate, const float* row_bias, const Strided* rows) {
  auto packed = [&](int64_t ir, int64_t, int64_t pc, int64_t, Buffers&) -> const float* {
    return a.p + packed_a_index(ir, pc, K);
  };
  run_sgemm(M, N, K, packed, b, c, ldc, accumulate, row_bias, rows);
}

}  // namespace

bool available() {
#if defined(__AVX512F__)
  // GNDET_GEMM=eigen sends the callers back to Eigen: for side-by-side benchmarks in one build.
  static const bool eigen = [] {
    const char* v = std::getenv("GNDET_GEMM");
    return v != nullptr && std::string_view(v) == "eigen";
  }();
  return !eigen;
#else
  return false;
#endif
}

// The loops of both entry points: a_panel(ir, mr, pc, kc) returns the (kc x kMr) panel of A's rows
// [ir, ir + mr) and columns [pc, pc + kc), packed on the spot or already packed.
void sgemm(int64_t M, int64_t N, int64_t K, const Strided& a, const BSource& b, float* c, int64_t ldc, bool accumulate,
           const float* row_bias) {
  auto pack = [&](int64_t ir, int64_t mr, int64_t pc, int64_t kc, Buffers& buf) -> const float* {
    pack_a(a, ir, mr, pc, kc, buf.a_panel, buf.zeros);
    return buf.a_panel;
  };
  run_sgemm(M, N, K, pack, b, c, ldc, accumulate, row_bias);
}

void sgemm(int64_t M, int64_t N, int64_t K, const Strided& a, const Strided& b, float* c, int64_t ldc, bool accumulate,
           const float* row_bias) {
  with_b_source(b, [&](const BSource& source) { sgemm(M, N, K, a, source, c, ldc, accumulate, row_bias); });
}

void sgemm(int64_t M, int64_t N, int64_t K, const PackedA& a, const BSource& b, float* c, int64_t ldc, bool accumulate,
           const float* row_bias) {
  sgemm_packed(M, N, K, a, b, c, ldc, accumulate, row_bias, nullptr);
}

void sgemm(int64_t M, int64_t N, int64_t K, const PackedA& a, const Strided& b, float* c, int64_t ldc, bool accumulate,
           const float* row_bias) {
  with_b_source(b, [&](const BSource& source) {
    sgemm_packed(M, N, K, a, source, c, ldc, accumulate, row_bias, b.cs == 1 ? &b : nullptr);
  });
}

void pack_a_panel(const Strided& a, int64_t M, int64_t K, int64_t panel, float* packed) {
  const int64_t i0 = panel * kMr, mr = std::min(kMr, M - i0);
  const float* zeros = thread_buffers().zeros;  // kKc of them: rows past M, one kKc piece at a time
  for (int64_t k0 = 0; k0 < K; k0 += kKc) pack_a(a, i0, mr, k0, std::min(kKc, K - k0), packed + packed_a_index(i0, k0, K), zeros);
}

}  // namespace gndet::cpu::gemm
