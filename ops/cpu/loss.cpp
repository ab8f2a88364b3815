// CPU loss kernels. Cross-entropy runs one task per sample (a row of C logits, in double); the
// elementwise losses are flat loops over contiguous tensors.
#include <atomic>
#include <cmath>

#include "ops/loss.h"
#include "ops/kernel_util.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

// Records the first out-of-range target seen by any thread, reported once the loop is over
// (an exception must not leave an OpenMP region).
struct BadTarget {
  std::atomic<bool> seen{false};
  std::atomic<int64_t> value{0}, sample{0};
  void report(int64_t v, int64_t i) {
    bool expected = false;
    if (seen.compare_exchange_strong(expected, true)) {
      value = v;
      sample = i;
    }
  }
};

// log(sum(exp(row))) with the row max subtracted first.
template <class T>
double log_sum_exp(const T* row, int64_t C) {
  double mx = row[0];
  for (int64_t c = 1; c < C; ++c) mx = std::max(mx, static_cast<double>(row[c]));
  double s = 0.0;
  for (int64_t c = 0; c < C; ++c) s += std::exp(static_cast<double>(row[c]) - mx);
  return mx + std::log(s);
}

void cross_entropy_cpu(const Tensor& losses, const Tensor& sample_weights, const Tensor& logits, const Tensor& target,
                       const Tensor& class_weight, int64_t ignore_index) {
  const int64_t N = logits.size(0), C = logits.size(1);
  BadTarget bad;
  dispatch_floating(logits.dtype(), "cross_entropy", [&]<class T>() {
    dispatch_index(target.dtype(), "cross_entropy", [&]<class I>() {
      const T* x = static_cast<const T*>(logits.raw_data());
      const I* t = static_cast<const I*>(target.raw_data());
      const T* w = in_ptr<T>(class_weight);
      T* out = static_cast<T*>(losses.raw_data());
      T* sw = static_cast<T*>(sample_weights.raw_data());
#pragma omp parallel for schedule(static) if (N * C >= cpu::kParallelGrain)
      for (int64_t i = 0; i < N; ++i) {
        const int64_t k = static_cast<int64_t>(t[i]);
        if (k == ignore_index) {
          out[i] = T(0);
          sw[i] = T(0);
          continue;
        }
        if (k < 0 || k >= C) {
          bad.report(k, i);
          out[i] = sw[i] = T(0);
          continue;
        }
        const T* row = x + i * C;
        const double wk = w ? static_cast<double>(w[k]) : 1.0;
        out[i] = static_cast<T>(wk * (log_sum_exp(row, C) - static_cast<double>(row[k])));
        sw[i] = static_cast<T>(wk);
      }
    });
  });
  GNDET_CHECK(!bad.seen, "cross_entropy: target ", bad.value.load(), " of sample ", bad.sample.load(),
              " is outside [0, ", C, ") and is not ignore_index ", ignore_index);
}

void cross_entropy_backward_cpu(const Tensor& dlogits, const Tensor& grad, const Tensor& logits, const Tensor& target,
                                const Tensor& class_weight, int64_t ignore_index) {
  const int64_t N = logits.size(0), C = logits.size(1);
  dispatch_floating(logits.dtype(), "cross_entropy_backward", [&]<class T>() {
    dispatch_index(target.dtype(), "cross_entropy_backward", [&]<class I>() {
      const T* x = static_cast<const T*>(logits.raw_data());
      const I* t = static_cast<const I*>(target.raw_data());
      const T* w = in_ptr<T>(class_weight);
      const T* g = static_cast<const T*>(grad.raw_data());
      T* dx = static_cast<T*>(dlogits.raw_data());
#pragma omp parallel for schedule(static) if (N * C >= cpu::kParallelGrain)
      for (int64_t i = 0; i < N; ++i) {
        T* drow = dx + i * C;
        const int64_t k = static_cast<int64_t>(t[i]);
        if (k == ignore_index || k < 0 || k >= C) {  // out-of-range targets were rejected by the forward
          std::fill(drow, drow + C, T(0));
          continue;
        }
        const T* row = x + i * C;
        const double scale = static_cast<double>(g[i]) * (w ? static_cast<double>(w[k]) : 1.0);
        const double lse = log_sum_exp(row, C);
        for (int64_t c = 0; c < C; ++c) drow[c] = static_cast<T>(scale * std::exp(static_cast<double>(row[c]) - lse));
        drow[k] = static_cast<T>(static_cast<double>(drow[k]) - scale);
      }
    });
  });
}

void bce_with_logits_cpu(const Tensor& out, const Tensor& logits, const Tensor& target) {
  const int64_t n = logits.numel();
  dispatch_floating(logits.dtype(), "binary_cross_entropy_with_logits", [&]<class T>() {
    const T* x = static_cast<const T*>(logits.raw_data());
    const T* t = static_cast<const T*>(target.raw_data());
    T* o = static_cast<T*>(out.raw_data());
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      // max(x, 0) - x t + log(1 + exp(-|x|)): exp never overflows, log1p keeps small terms exact.
      o[i] = std::max(x[i], T(0)) - x[i] * t[i] + std::log1p(std::exp(-std::abs(x[i])));
    }
  });
}

void bce_with_logits_backward_cpu(const Tensor& dlogits, const Tensor& dtarget, const Tensor& grad,
                                  const Tensor& logits, const Tensor& target) {
  const int64_t n = logits.numel();
  dispatch_floating(logits.dtype(), "binary_cross_entropy_with_logits_backward", [&]<class T>() {
    const T* x = static_cast<const T*>(logits.raw_data());
    const T* t = static_cast<const T*>(target.raw_data());
    const T* g = static_cast<const T*>(grad.raw_data());
    T* dx = static_cast<T*>(dlogits.raw_data());
    T* dt = out_ptr<T>(dtarget);
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      // sigmoid without overflow: 1 / (1 + e^-x) for x >= 0, e^x / (1 + e^x) otherwise.
      const T e = std::exp(-std::abs(x[i]));
      const T sig = x[i] >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
      dx[i] = g[i] * (sig - t[i]);
      if (dt) dt[i] = -g[i] * x[i];
    }
  });
}

void smooth_l1_cpu(const Tensor& out, const Tensor& pred, const Tensor& target, double beta) {
  const int64_t n = pred.numel();
  dispatch_floating(pred.dtype(), "smooth_l1_loss", [&]<class T>() {
    const T* p = static_cast<const T*>(pred.raw_data());
    const T* t = static_cast<const T*>(target.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    const T b = static_cast<T>(beta);
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const T d = std::abs(p[i] - t[i]);
      o[i] = d < b ? T(0.5) * d * d / b : d - T(0.5) * b;
    }
  });
}

void smooth_l1_backward_cpu(const Tensor& dpred, const Tensor& grad, const Tensor& pred, const Tensor& target,
                            double beta) {
  const int64_t n = pred.numel();
  dispatch_floating(pred.dtype(), "smooth_l1_loss_backward", [&]<class T>() {
    const T* p = static_cast<const T*>(pred.raw_data());
    const T* t = static_cast<const T*>(target.raw_data());
    const T* g = static_cast<const T*>(grad.raw_data());
    T* dp = static_cast<T*>(dpred.raw_data());
    const T b = static_cast<T>(beta);
#pragma omp parallel for schedule(static) if (n >= cpu::kParallelGrain)
    for (int64_t i = 0; i < n; ++i) {
      const T d = p[i] - t[i];
      const T slope = std::abs(d) < b ? d / b : T((d > 0) - (d < 0));
      dp[i] = g[i] * slope;
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(cross_entropy_kernel, CPU, cross_entropy_cpu);
GNDET_REGISTER_KERNEL(cross_entropy_backward_kernel, CPU, cross_entropy_backward_cpu);
GNDET_REGISTER_KERNEL(bce_with_logits_kernel, CPU, bce_with_logits_cpu);
GNDET_REGISTER_KERNEL(bce_with_logits_backward_kernel, CPU, bce_with_logits_backward_cpu);
GNDET_REGISTER_KERNEL(smooth_l1_kernel, CPU, smooth_l1_cpu);
GNDET_REGISTER_KERNEL(smooth_l1_backward_kernel, CPU, smooth_l1_backward_cpu);

}  // namespace gndet
