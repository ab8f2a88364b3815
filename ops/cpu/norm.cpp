// CPU GroupNorm, weight standardisation and per-channel affine.
//
// GroupNorm runs one task per (n, g): the group's block of C/G * S contiguous values is read for
// its statistics and then again, usually still in cache (L2), for the output; the backward reads
// dy and x once for the per-channel sums and once more for dx. `omp simd reduction` lets the
// compiler vectorise the sums without -ffast-math.
// Parallel tasks: (n, g) blocks for the statistics and dx, channels for dweight / dbias.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

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
constexpr int64_t kChunk = 256;

struct Moments {
  double mean = 0.0, m2 = 0.0;  // m2: sum of squared deviations from the mean
  int64_t count = 0;
};

template <class T>
Moments moments(const T* x, int64_t n) {
  Moments acc;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t len = std::min(kChunk, n - c0);
    const T* p = x + c0;
    const T shift = p[0];
    T s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < len; ++i) s += p[i] - shift;
    const double m = static_cast<double>(shift) + static_cast<double>(s) / static_cast<double>(len);
    const T mt = static_cast<T>(m);
    T q = 0;
#pragma omp simd reduction(+ : q)
    for (int64_t i = 0; i < len; ++i) q += (p[i] - mt) * (p[i] - mt);
    // q is about mt; about the chunk mean m it is smaller by len * (m - mt)^2.
    const double q_m = static_cast<double>(q) - static_cast<double>(len) * (m - mt) * (m - mt);
    const int64_t total = acc.count + len;
    const double delta = m - acc.mean;
    acc.mean += delta * static_cast<double>(len) / static_cast<double>(total);
    acc.m2 += q_m + delta * delta * static_cast<double>(acc.count) * static_cast<double>(len) / static_cast<double>(total);
    acc.count = total;
  }
  return acc;
}

// sum(dy * (x - mu)) and sum(dy) over n values.
template <class T>
std::pair<double, double> centred_sums(const T* dy, const T* x, T mu, int64_t n) {
  double s_dx = 0.0, s_d = 0.0;
  for (int64_t c0 = 0; c0 < n; c0 += kChunk) {
    const int64_t len = std::min(kChunk, n - c0);
    const T* g = dy + c0;
    const T* v = x + c0;
    T a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
    for (int64_t i = 0; i < len; ++i) {
      a += g[i] * (v[i] - mu);
      b += g[i];
    }
    s_dx += a;
    s_d += b;
  }
  return {s_dx, s_d};
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
#pragma omp parallel for schedule(static) if (N * C * S >= cpu::kParallelGrain)
    for (int64_t task = 0; task < N * G; ++task) {
      const int64_t g = task % G;
      const Moments m = moments(in + task * M, M);
      const double var = M > 0 ? m.m2 / static_cast<double>(M) : 0.0;
      const double r = 1.0 / std::sqrt(var + eps);
      mean_out[task] = static_cast<T>(m.mean);
      rstd_out[task] = static_cast<T>(r);
      const T mu = static_cast<T>(m.mean);
      for (int64_t c = 0; c < Cg; ++c) {
        const int64_t ch = g * Cg + c;
        const T a = static_cast<T>(r * (gamma ? static_cast<double>(gamma[ch]) : 1.0));
        const T b = beta ? beta[ch] : T(0);
        const T* xr = in + task * M + c * S;
        T* yr = out + task * M + c * S;
        if constexpr (kRelu) {
#pragma omp simd
          for (int64_t i = 0; i < S; ++i) yr[i] = std::max((xr[i] - mu) * a + b, T(0));
        } else {
#pragma omp simd
          for (int64_t i = 0; i < S; ++i) yr[i] = (xr[i] - mu) * a + b;
        }
      }
    }
  });
}

// With x_hat = (x - mean) * rstd over a group of M values, dy_hat = dy * gamma:
//   dx = rstd * gamma[c] * dy + c2 * (x - mean) + c3, where
//   c2 = -rstd^3 / M * sum_c gamma[c] * ds[c],   ds[c] = sum_s dy * (x - mean)
//   c3 = -rstd / M * sum_c gamma[c] * db[c],     db[c] = sum_s dy
//   dgamma[c] = sum_n ds[n, c] * rstd[n, g(c)],  dbeta[c] = sum_n db[n, c]
// Centring x before the products keeps float inputs with a large mean accurate.
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
#pragma omp parallel for schedule(static) if (N * C * S >= cpu::kParallelGrain)
    for (int64_t task = 0; task < N * G; ++task) {
      const int64_t n = task / G, g = task % G;
      const double mu = mu_in[task], r = rstd_in[task];
      double sum_gamma_ds = 0.0, sum_gamma_db = 0.0;
      for (int64_t c = 0; c < Cg; ++c) {
        const int64_t ch = g * Cg + c;
        const auto [s_dx, s_d] = centred_sums(grad + task * M + c * S, in + task * M + c * S, static_cast<T>(mu), S);
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
      const T mu_t = static_cast<T>(mu);
      for (int64_t c = 0; c < Cg; ++c) {
        const int64_t ch = g * Cg + c;
        const T c1 = static_cast<T>(r * (gamma ? static_cast<double>(gamma[ch]) : 1.0));
        const T* xr = in + task * M + c * S;
        const T* gr = grad + task * M + c * S;
        T* o = gx + task * M + c * S;
#pragma omp simd
        for (int64_t i = 0; i < S; ++i) o[i] = c1 * gr[i] + c2 * (xr[i] - mu_t) + c3;
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
