// CPU GroupNorm, weight standardisation and per-channel affine.
//
// GroupNorm reads its input twice: once for a group's statistics, once more for the output (the
// backward: dy and x for the per-channel sums, then again for dx). The second pass is cheap only
// while the group is still in the core's L2, so there are two ways to run it:
//  - groups of up to kSmallGroupBytes: one task per (n, g), each thread walking whole groups;
//  - larger ones (the backbone's first stages at the zoo's 800 x 1344: layer1's and the stem's
//    groups are 2.1 MB, more than a 2 MB L2 holds next to the output) go one group at a time,
//    its slabs shared between the threads: each thread reads its slabs for the statistics,
//    the threads meet, and each writes the output of the same slabs, still in its own L2.
//    (On its own this measured no faster on this project's VM, bench/results/cpu_layers.md: the
//    second read was not the cost there; it keeps that read off the L3 that cores share.)
// Which way depends on the group's size only, and both compute the same numbers: statistics are
// always per slab of kSlab values, merged in slab order, so one thread and two give the same bits.
// What did pay: outputs (y, and the backward's dx) of kStreamBytes and more written with streaming
// stores (forward 0.62-0.66 -> 0.90-1.05 of memcpy, backward 0.76-0.82 -> 1.06-1.30), the sums in
// many lanes (see lane_sum), and asking for the statistics' lines ahead (see kAheadBytes).
// GCC 12 warns that its own AVX-512 intrinsics (_mm512_setzero_ps and friends) use '__Y'
// uninitialised: a known false positive (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <type_traits>
#include <utility>
#include <vector>

#include <omp.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "ops/norm.h"
#include "ops/kernel_util.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

// Sums run over chunks of kChunk values that stay in L1: inside a chunk in the input type with
// `omp simd` lanes (float SSE / AVX vectors at full width; converting every float to double
// costs this memory-bound kernel a factor ~3 in SSE builds), across chunks in double.
// Accuracy: each chunk's values are first shifted by its first element, so the float sums see
// deviations, not the mean (a mean of 1000 with a spread of 0.01 still gives ~1e-9 relative
// error in the variance); the variance is two-pass per chunk, and chunks merge by Chan et al.'s
// pairwise formula in double: nothing like E[x^2] - E[x]^2 ever cancels.
constexpr int64_t kChunk = 1024;
// Slabs: the unit of work the threads share in a large group (a multiple of kChunk: 32 KB of
// float), and the unit whose statistics merge, in order, into a group's.
constexpr int64_t kSlab = 8192;
// Above this a group is shared between the threads (see the top): half of L2, leaving room for
// the output written meanwhile.
constexpr int64_t kSmallGroupBytes = int64_t{1} << 20;

int64_t slab_count(int64_t n) { return (n + kSlab - 1) / kSlab; }

struct Moments {
  double mean = 0.0, m2 = 0.0;  // m2: sum of squared deviations from the mean
  int64_t count = 0;
};

// Chan et al.: the moments of the union of two disjoint sets of values.
void merge_into(Moments& acc, const Moments& b) {
  if (b.count == 0) return;
  const int64_t total = acc.count + b.count;
  const double delta = b.mean - acc.mean;
  acc.mean += delta * static_cast<double>(b.count) / static_cast<double>(total);
  acc.m2 += b.m2 + delta * delta * static_cast<double>(acc.count) * static_cast<double>(b.count) / static_cast<double>(total);
  acc.count = total;
}

// sum f(i) (and sum g(i)) for i in [0, len), len <= kChunk: W running sums each, W apart, then
// added pairwise down to 16 and in order after that. One running sum would make every add wait
// for the previous one (a chain of len / 16 adds of 4 cycles each with AVX-512: most of this
// memory-bound kernel's time on L3-resident tensors, bench/cpu_layers); 64 of them give the
// compiler 4 independent vectors. Below 256 values (a small group, a chunk's remainder) 16 sums,
// one vector, cost less. The order depends on len only: the same in every build. (Lanes, not
// `omp simd reduction` over these lambdas: GCC 12 left that scalar.)
//
// `ahead`: the arrays f reads straight from memory (not those a previous pass left in L1): each
// step asks for their lines kAheadBytes further on. A chunk is 4 KB, one page, and the hardware's
// streaming prefetcher stops at page boundaries, so without this every chunk began by waiting on
// L3 while the core was still busy folding the previous one's sums: a group's statistics read
// 17 MB from L3 at 0.53 ms against 0.36 for a plain sum over the same bytes (a standalone copy of
// this loop on this project's VM, 7 runs each); asking 8 KB ahead brought it to 0.42. Prefetches
// never fault, so asking past the end of an array is harmless; they change no value.
constexpr int64_t kAheadBytes = 8192;

template <int W, class T>
void prefetch_ahead(const T* p, int64_t i) {
  const uintptr_t at = reinterpret_cast<uintptr_t>(p + i) + kAheadBytes;  // integers: p + i + kAhead may leave the array
  for (int64_t b = 0; b < W * static_cast<int64_t>(sizeof(T)); b += 64) __builtin_prefetch(reinterpret_cast<const void*>(at + b));
}

template <int W, class T, class F, class... Ahead>
void add_lanes(T* lane, int64_t len, F f, const Ahead*... ahead) {
  int64_t i = 0;
  for (; i + W <= len; i += W) {
    (prefetch_ahead<W>(ahead, i), ...);
#pragma omp simd
    for (int64_t j = 0; j < W; ++j) lane[j] += f(i + j);
  }
  for (int64_t j = 0; i + j < len; ++j) lane[j] += f(i + j);
}

template <int W, class T>
T fold_lanes(T* lane) {
  for (int64_t w = W / 2; w >= 16; w /= 2) {
#pragma omp simd
    for (int64_t j = 0; j < w; ++j) lane[j] += lane[j + w];
  }
  T s = 0;
  for (int64_t j = 0; j < 16; ++j) s += lane[j];
  return s;
}

constexpr int64_t kMinWide = 256;

template <class T, class F, class... Ahead>
T lane_sum(int64_t len, F f, const Ahead*... ahead) {
  if (len < kMinWide) {
    T lane[16] = {};
    add_lanes<16>(lane, len, f, ahead...);
    return fold_lanes<16>(lane);
  }
  T lane[64] = {};
  add_lanes<64>(lane, len, f, ahead...);
  return fold_lanes<64>(lane);
}

template <int W, class T, class F, class G, class... Ahead>
void add_lanes(T* la, T* lb, int64_t len, F f, G g, const Ahead*... ahead) {
  int64_t i = 0;
  for (; i + W <= len; i += W) {
    (prefetch_ahead<W>(ahead, i), ...);
#pragma omp simd
    for (int64_t j = 0; j < W; ++j) {
      la[j] += f(i + j);
      lb[j] += g(i + j);
    }
  }
  for (int64_t j = 0; i + j < len; ++j) {
    la[j] += f(i + j);
    lb[j] += g(i + j);
  }
}

template <class T, class F, class G, class... Ahead>
std::pair<T, T> lane_sums(int64_t len, F f, G g, const Ahead*... ahead) {
  if (len < kMinWide) {
    T la[16] = {}, lb[16] = {};
    add_lanes<16>(la, lb, len, f, g, ahead...);
    return {fold_lanes<16>(la), fold_lanes<16>(lb)};
  }
  T la[64] = {}, lb[64] = {};
  add_lanes<64>(la, lb, len, f, g, ahead...);
  return {fold_lanes<64>(la), fold_lanes<64>(lb)};
}

// The moments of n <= kSlab values (one slab), chunk by chunk.
template <class T>
Moments slab_moments(const T* x, int64_t n) {
  Moments acc;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t len = std::min(kChunk, n - c0);
    const T* p = x + c0;
    const T shift = p[0];
    const T s = lane_sum<T>(len, [&](int64_t i) { return p[i] - shift; }, p);  // from memory: prefetch
    const double m = static_cast<double>(shift) + static_cast<double>(s) / static_cast<double>(len);
    const T mt = static_cast<T>(m);
    const T q = lane_sum<T>(len, [&](int64_t i) { return (p[i] - mt) * (p[i] - mt); });  // from L1
    // q is about mt; about the chunk mean m it is smaller by len * (m - mt)^2.
    const double q_m = static_cast<double>(q) - static_cast<double>(len) * (m - mt) * (m - mt);
    merge_into(acc, {m, q_m, len});
  }
  return acc;
}

// A group's (mean, rstd) from its moments; float values use the float mean, as the output does.
struct GroupStats {
  double mean, rstd;
};
GroupStats group_stats(const Moments& m, int64_t M, double eps) {
  const double var = M > 0 ? m.m2 / static_cast<double>(M) : 0.0;
  return {m.mean, 1.0 / std::sqrt(var + eps)};
}

// Outputs of at least this many bytes are written with streaming stores (AVX-512 float):
// bypassing the caches saves reading each output line in before overwriting it, and a tensor this
// large would leave the caches before the next layer reads it anyway. (bench/cpu_layers: the
// backbone's 69 MB GroupNorms at 0.66 of memcpy with cached stores, see bench/results/cpu_layers.md.)
// The 17 MB layers stay cached: streamed, they ran faster in that benchmark (0.65-0.85 -> 0.74-0.86
// forward), which repeats one layer, but the next convolution would then read them from memory
// instead of L3, and whole inferences could not tell the two apart (bench/model_iteration --mode
// infer, 4 alternated pairs: 2.2-3.0 s either way), so nothing measured says to stream them.
// Rows (channels) shorter than kStreamRowBytes are mostly partial lines, written element by
// element: the RoI heads' 7 x 7 channels ran at half speed streamed.
constexpr int64_t kStreamBytes = int64_t{32} << 20, kStreamRowBytes = 4096;

template <class T>
bool stream_output(int64_t numel, int64_t row) {
  return numel * static_cast<int64_t>(sizeof(T)) >= kStreamBytes && row * static_cast<int64_t>(sizeof(T)) >= kStreamRowBytes;
}

// out[i] = value(i) for i in [0, len). Rows of kStreamRowBytes or more are first written one value
// at a time up to the next 64-byte boundary, so that no vector store after it straddles two lines
// (a channel of 4200 floats, layer3's, starts 32 bytes into a line one time in two). With `stream`
// (see kStreamBytes; AVX-512 float only) whole lines are then streamed. Each value is computed by
// the same expression on every road: the same bits either way. The caller fences.
template <class T, class F>
void write_values(T* out, int64_t len, bool stream, F value) {
  int64_t i = 0;
  if (stream || len * static_cast<int64_t>(sizeof(T)) >= kStreamRowBytes) {
    for (; i < len && reinterpret_cast<uintptr_t>(out + i) % 64 != 0; ++i) out[i] = value(i);
  }
#if defined(__AVX512F__)
  if constexpr (std::is_same_v<T, float>) {
    if (stream) {
      for (; i + 16 <= len; i += 16) {
        alignas(64) float line[16];
#pragma omp simd
        for (int64_t j = 0; j < 16; ++j) line[j] = value(i + j);
        _mm512_stream_ps(out + i, _mm512_load_ps(line));
      }
    }
  }
#else
  (void)stream;  // streaming stores are AVX-512 only
#endif
#pragma omp simd
  for (int64_t j = i; j < len; ++j) out[j] = value(j);
}

// Streamed lines are ordered before whatever this thread does next.
void fence_streamed(bool stream) {
#if defined(__AVX512F__)
  if (stream) _mm_sfence();
#else
  (void)stream;
#endif
}

// y = (x - mean) * rstd * gamma + beta (then max(0, y) with kRelu) for the values [p0, p1) of
// group `task`, whose channels are S values each. `stream`: see kStreamBytes (same values).
template <bool kRelu, class T>
void normalize_range(T* out, const T* in, const T* gamma, const T* beta, int64_t task, int64_t g, int64_t Cg,
                     int64_t S, GroupStats st, int64_t p0, int64_t p1, bool stream) {
  if (p0 >= p1) return;  // also S == 0: (N, C, 0, W) inputs have nothing to write
  const int64_t M = Cg * S;
  const T mu = static_cast<T>(st.mean);
  for (int64_t p = p0, c = p0 / S; p < p1; ++c) {
    const int64_t end = std::min(p1, (c + 1) * S);
    const int64_t ch = g * Cg + c;
    const T a = static_cast<T>(st.rstd * (gamma ? static_cast<double>(gamma[ch]) : 1.0));
    const T b = beta ? beta[ch] : T(0);
    const T* xr = in + task * M + p;
    if constexpr (kRelu) {
      write_values(out + task * M + p, end - p, stream, [&](int64_t i) { return std::max((xr[i] - mu) * a + b, T(0)); });
    } else {
      write_values(out + task * M + p, end - p, stream, [&](int64_t i) { return (xr[i] - mu) * a + b; });
    }
    p = end;
  }
  fence_streamed(stream);
}

// relu: max(0, y) as it is written (group_norm_relu: one pass over the output less).
template <bool kRelu>
void group_norm_cpu(const Tensor& y, const Tensor& mean, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                    const Tensor& bias, int64_t groups, double eps) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2), G = groups, Cg = C / G, M = Cg * S;
  dispatch_floating(x.dtype(), "group_norm", [&]<class T>() {
    const T* in = in_ptr<T>(x);
    const T* gamma = in_ptr<T>(weight);
    const T* beta = in_ptr<T>(bias);
    T* out = out_ptr<T>(y);
    T* mean_out = out_ptr<T>(mean);
    T* rstd_out = out_ptr<T>(rstd);
    const int64_t slabs = slab_count(M);
    const bool stream = stream_output<T>(N * C * S, S);
    auto save = [&](int64_t task, GroupStats st) {
      mean_out[task] = static_cast<T>(st.mean);
      rstd_out[task] = static_cast<T>(st.rstd);
    };
    if (M * static_cast<int64_t>(sizeof(T)) <= kSmallGroupBytes) {
#pragma omp parallel for schedule(static) if (N * C * S >= cpu::kParallelGrain)
      for (int64_t task = 0; task < N * G; ++task) {
        Moments m;
        for (int64_t s = 0; s < slabs; ++s) merge_into(m, slab_moments(in + task * M + s * kSlab, std::min(kSlab, M - s * kSlab)));
        const GroupStats st = group_stats(m, M, eps);
        save(task, st);
        normalize_range<kRelu>(out, in, gamma, beta, task, task % G, Cg, S, st, 0, M, stream);
      }
      return;
    }
    // One group at a time, its slabs shared. The slab moments are kept for two groups: a thread
    // that has finished group t's output may already fill group t+1's while another still merges
    // t's; the barrier ending t+1's statistics keeps it from reaching t+2's.
    std::vector<Moments> parts(static_cast<size_t>(2 * slabs));
#pragma omp parallel
    {
      for (int64_t task = 0; task < N * G; ++task) {
        Moments* part = parts.data() + (task % 2) * slabs;
        // Both loops: schedule(static) over the same count, so each thread gets the same slabs in
        // the second as in the first (OpenMP guarantees this), where it just read them.
#pragma omp for schedule(static)
        for (int64_t s = 0; s < slabs; ++s) part[s] = slab_moments(in + task * M + s * kSlab, std::min(kSlab, M - s * kSlab));
        Moments m;
        for (int64_t s = 0; s < slabs; ++s) merge_into(m, part[s]);
        const GroupStats st = group_stats(m, M, eps);
        if (omp_get_thread_num() == 0) save(task, st);
#pragma omp for schedule(static) nowait
        for (int64_t s = 0; s < slabs; ++s) {
          normalize_range<kRelu>(out, in, gamma, beta, task, task % G, Cg, S, st, s * kSlab, std::min(M, (s + 1) * kSlab), stream);
        }
      }
    }
  });
}

// sum(dy * (x - mu)) and sum(dy) over n <= kSlab values of one channel.
template <class T>
std::pair<double, double> centred_sums(const T* dy, const T* x, T mu, int64_t n) {
  if (n < kMinWide) {  // a RoI head's 7 x 7 or 14 x 14 channel: one vector of sums, no lanes to fold
    T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = 0; i < n; ++i) {
      a += dy[i] * (x[i] - mu);
      b += dy[i];
    }
    return {a, b};
  }
  double s_dx = 0.0, s_d = 0.0;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t len = std::min(kChunk, n - c0);
    const T* g = dy + c0;
    const T* v = x + c0;
    const auto [a, b] = lane_sums<T>(len, [&](int64_t i) { return g[i] * (v[i] - mu); }, [&](int64_t i) { return g[i]; }, g, v);
    s_dx += a;
    s_d += b;
  }
  return {s_dx, s_d};
}

// With x_hat = (x - mean) * rstd over a group of M values, dy_hat = dy * gamma:
//   dx = rstd * gamma[c] * dy + c2 * (x - mean) + c3, where
//   c2 = -rstd^3 / M * sum_c gamma[c] * ds[c],   ds[c] = sum_s dy * (x - mean)
//   c3 = -rstd / M * sum_c gamma[c] * db[c],     db[c] = sum_s dy
//   dgamma[c] = sum_n ds[n, c] * rstd[n, g(c)],  dbeta[c] = sum_n db[n, c]
// Centring x before the products keeps float inputs with a large mean accurate.
// The per-channel sums are taken per piece of a channel (kSlab values) and added in piece order,
// by one thread or shared, as in the forward.
void group_norm_backward_cpu(const Tensor& dx, const Tensor& dweight, const Tensor& dbias, const Tensor& dy,
                             const Tensor& x, const Tensor& mean, const Tensor& rstd, const Tensor& weight,
                             int64_t groups) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2), G = groups, Cg = C / G, M = Cg * S;
  std::vector<double> ds(static_cast<size_t>(N * C)), db(static_cast<size_t>(N * C));
  dispatch_floating(x.dtype(), "group_norm_backward", [&]<class T>() {
    const T* in = in_ptr<T>(x);
    const T* grad = in_ptr<T>(dy);
    const T* gamma = in_ptr<T>(weight);
    const T* mu_in = in_ptr<T>(mean);
    const T* rstd_in = in_ptr<T>(rstd);
    T* gx = out_ptr<T>(dx);
    const int64_t pieces = slab_count(S), items = Cg * pieces;  // a group's work: (channel, piece)
    const bool stream = stream_output<T>(N * C * S, S);
    if (M * static_cast<int64_t>(sizeof(T)) <= kSmallGroupBytes) {
      // Written out rather than through the lambdas below: with the RoI heads' 49-value channels
      // the calls are most of the work, and this loop ran 1.25x faster (bench/cpu_layers,
      // (512, 256, 7, 7): 0.50 -> 0.63 of memcpy). The same sums in the same order.
#pragma omp parallel for schedule(static) if (N * C * S >= cpu::kParallelGrain)
      for (int64_t task = 0; task < N * G; ++task) {
        const int64_t n = task / G, g = task % G;
        const double r = rstd_in[task];
        const T mu = mu_in[task];
        double sum_gamma_ds = 0.0, sum_gamma_db = 0.0;
        for (int64_t c = 0; c < Cg; ++c) {
          const int64_t ch = g * Cg + c, off = task * M + c * S;
          double s_dx = 0.0, s_d = 0.0;
          for (int64_t k = 0; k < pieces; ++k) {
            const auto [a, b] = centred_sums(grad + off + k * kSlab, in + off + k * kSlab, mu, std::min(kSlab, S - k * kSlab));
            s_dx += a;
            s_d += b;
          }
          ds[n * C + ch] = s_dx;
          db[n * C + ch] = s_d;
          const double gm = gamma ? static_cast<double>(gamma[ch]) : 1.0;
          sum_gamma_ds += gm * s_dx;
          sum_gamma_db += gm * s_d;
        }
        if (gx == nullptr) continue;
        const double inv_m = 1.0 / static_cast<double>(M);
        const T c2 = static_cast<T>(-r * r * r * inv_m * sum_gamma_ds);
        const T c3 = static_cast<T>(-r * inv_m * sum_gamma_db);
        for (int64_t c = 0; c < Cg; ++c) {
          const int64_t ch = g * Cg + c, off = task * M + c * S;
          const T c1 = static_cast<T>(r * (gamma ? static_cast<double>(gamma[ch]) : 1.0));
          const T* xr = in + off;
          const T* gr = grad + off;
          write_values(gx + off, S, stream, [&](int64_t i) { return c1 * gr[i] + c2 * (xr[i] - mu) + c3; });
        }
        fence_streamed(stream);
      }
    } else {
      // Shared groups, as in the forward (two groups' piece sums kept, same static schedules).
      // Piece k of channel c of group `task`: kSlab values from k * kSlab.
      auto piece_sums = [&](int64_t task, int64_t c, int64_t k) {
        const int64_t off = task * M + c * S + k * kSlab;
        return centred_sums(grad + off, in + off, mu_in[task], std::min(kSlab, S - k * kSlab));
      };
      auto finish_sums = [&](int64_t task, const std::pair<double, double>* part, bool store, double* c2, double* c3) {
        const int64_t n = task / G, g = task % G;
        const double r = rstd_in[task];
        double sum_gamma_ds = 0.0, sum_gamma_db = 0.0;
        for (int64_t c = 0; c < Cg; ++c) {
          double s_dx = 0.0, s_d = 0.0;
          for (int64_t k = 0; k < pieces; ++k) {
            s_dx += part[c * pieces + k].first;
            s_d += part[c * pieces + k].second;
          }
          const int64_t ch = g * Cg + c;
          if (store) {
            ds[n * C + ch] = s_dx;
            db[n * C + ch] = s_d;
          }
          const double gm = gamma ? static_cast<double>(gamma[ch]) : 1.0;
          sum_gamma_ds += gm * s_dx;
          sum_gamma_db += gm * s_d;
        }
        const double inv_m = 1.0 / static_cast<double>(M);
        *c2 = -r * r * r * inv_m * sum_gamma_ds;
        *c3 = -r * inv_m * sum_gamma_db;
      };
      auto write_dx = [&](int64_t task, int64_t g, int64_t c, int64_t k, T c2, T c3) {
        const int64_t off = task * M + c * S + k * kSlab, len = std::min(kSlab, S - k * kSlab);
        const int64_t ch = g * Cg + c;
        const T c1 = static_cast<T>(static_cast<double>(rstd_in[task]) * (gamma ? static_cast<double>(gamma[ch]) : 1.0));
        const T mu_t = mu_in[task];
        const T* xr = in + off;
        const T* gr = grad + off;
        write_values(gx + off, len, stream, [&](int64_t i) { return c1 * gr[i] + c2 * (xr[i] - mu_t) + c3; });
      };
      std::vector<std::pair<double, double>> parts(static_cast<size_t>(2 * items));
#pragma omp parallel
      {
        for (int64_t task = 0; task < N * G; ++task) {
          std::pair<double, double>* part = parts.data() + (task % 2) * items;
#pragma omp for schedule(static)
          for (int64_t i = 0; i < items; ++i) part[i] = piece_sums(task, i / pieces, i % pieces);
          // Every thread takes (c2, c3) from the same sums in the same order; one stores ds / db.
          double c2 = 0.0, c3 = 0.0;
          finish_sums(task, part, omp_get_thread_num() == 0, &c2, &c3);
          if (gx == nullptr) continue;
#pragma omp for schedule(static) nowait
          for (int64_t i = 0; i < items; ++i) write_dx(task, task % G, i / pieces, i % pieces, static_cast<T>(c2), static_cast<T>(c3));
          fence_streamed(stream);
        }
      }
    }
    T* dgamma = out_ptr<T>(dweight);
    T* dbeta = out_ptr<T>(dbias);
    if (dgamma == nullptr && dbeta == nullptr) return;
    for (int64_t ch = 0; ch < C; ++ch) {  // (N, C) values: too few to be worth threads
      double sg = 0.0, sb = 0.0;
      for (int64_t n = 0; n < N; ++n) {
        sg += ds[n * C + ch] * static_cast<double>(rstd_in[n * G + ch / Cg]);
        sb += db[n * C + ch];
      }
      if (dgamma) dgamma[ch] = static_cast<T>(sg);
      if (dbeta) dbeta[ch] = static_cast<T>(sb);
    }
  });
}

// Mean, unbiased std and (std + eps) of one output channel's R weights, in two passes in double.
// Not moments(): its float sums leave the mean off by a few float roundings, and every standardised
// weight near zero, (w - mean) / std, inherits that absolute error: in an X-101 GN+WS layer1 conv,
// 4727 of 8192 float32 weights came out more than half an ulp from the exact value, the worst by
// 10^4 ulps, which made gndet's float32 backbone 2x further from float64 than PyTorch's
// (bench/results/float32_accuracy.md). A row is at most C_in * kh * kw values: double costs nothing.
struct RowStats {
  double mean, std, denom;
};
template <class T>
RowStats row_stats(const T* w, int64_t R, double eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < R; ++i) sum += static_cast<double>(w[i]);
  const double mean = sum / static_cast<double>(R);
  double m2 = 0.0;
  for (int64_t i = 0; i < R; ++i) {
    const double d = static_cast<double>(w[i]) - mean;
    m2 += d * d;
  }
  const double std = std::sqrt(m2 / static_cast<double>(R - 1));
  return {mean, std, std + eps};
}

void weight_standardization_cpu(const Tensor& out, const Tensor& w, double eps) {
  const int64_t O = w.size(0), R = w.size(1);
  dispatch_floating(w.dtype(), "weight_standardization", [&]<class T>() {
    const T* in = in_ptr<T>(w);
    T* o = out_ptr<T>(out);
#pragma omp parallel for schedule(static) if (O * R >= cpu::kParallelGrain)
    for (int64_t r = 0; r < O; ++r) {
      const RowStats st = row_stats(in + r * R, R, eps);
      const double inv = 1.0 / st.denom;
      for (int64_t i = 0; i < R; ++i) o[r * R + i] = static_cast<T>((in[r * R + i] - st.mean) * inv);
    }
  });
}

// With d = w - mean, s = std_unbiased, u = s + eps, w_hat = d / u:
//   dw = (g - mean(g)) / u - d * sum(g * d) / (u^2 * (R - 1) * s)
// The second term is 0 when s == 0 (then d == 0 too; the limit of the expression).
void weight_standardization_backward_cpu(const Tensor& dw, const Tensor& dout, const Tensor& w, double eps) {
  const int64_t O = w.size(0), R = w.size(1);
  dispatch_floating(w.dtype(), "weight_standardization_backward", [&]<class T>() {
    const T* in = in_ptr<T>(w);
    const T* g = in_ptr<T>(dout);
    T* o = out_ptr<T>(dw);
#pragma omp parallel for schedule(static) if (O * R >= cpu::kParallelGrain)
    for (int64_t r = 0; r < O; ++r) {
      const T* wr = in + r * R;
      const T* gr = g + r * R;
      const RowStats st = row_stats(wr, R, eps);
      double g_sum = 0.0, gd_sum = 0.0;
      for (int64_t i = 0; i < R; ++i) {
        g_sum += gr[i];
        gd_sum += static_cast<double>(gr[i]) * (wr[i] - st.mean);
      }
      const double g_mean = g_sum / static_cast<double>(R);
      const double k = st.std > 0.0 ? gd_sum / (st.denom * st.denom * static_cast<double>(R - 1) * st.std) : 0.0;
      for (int64_t i = 0; i < R; ++i) {
        o[r * R + i] = static_cast<T>((gr[i] - g_mean) / st.denom - (wr[i] - st.mean) * k);
      }
    }
  });
}

void channel_affine_cpu(const Tensor& y, const Tensor& x, const Tensor& scale, const Tensor& shift) {
  const int64_t N = x.size(0), C = x.size(1), S = x.size(2);
  dispatch_floating(x.dtype(), "channel_affine", [&]<class T>() {
    const T* in = in_ptr<T>(x);
    const T* a = in_ptr<T>(scale);
    const T* b = in_ptr<T>(shift);
    T* out = out_ptr<T>(y);
#pragma omp parallel for schedule(static) if (N * C * S >= cpu::kParallelGrain)
    for (int64_t q = 0; q < N * C; ++q) {
      const T av = a[q % C], bv = b ? b[q % C] : T(0);
      const T* xr = in + q * S;
      T* yr = out + q * S;
#pragma omp simd
      for (int64_t i = 0; i < S; ++i) yr[i] = xr[i] * av + bv;
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(group_norm_kernel, CPU, group_norm_cpu<false>);
GNDET_REGISTER_KERNEL(group_norm_relu_kernel, CPU, group_norm_cpu<true>);
GNDET_REGISTER_KERNEL(group_norm_backward_kernel, CPU, group_norm_backward_cpu);
GNDET_REGISTER_KERNEL(weight_standardization_kernel, CPU, weight_standardization_cpu);
GNDET_REGISTER_KERNEL(weight_standardization_backward_kernel, CPU, weight_standardization_backward_cpu);
GNDET_REGISTER_KERNEL(channel_affine_kernel, CPU, channel_affine_cpu);

}  // namespace gndet
