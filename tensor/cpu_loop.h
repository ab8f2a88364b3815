// for_each_row: the one CPU loop behind every elementwise kernel. It splits a StridedPlan into
// rows along the innermost dimension and hands each row to `inner(offsets, strides, n)`, with one
// offset and one stride per operand, in OpenMP parallel when the work is large enough to pay.
#pragma once

#include <algorithm>
#include <cstdint>

#include <omp.h>

#include "tensor/strided.h"

namespace gndet::cpu {

// Below this many elements a parallel region costs more than it saves.
inline constexpr int64_t kParallelGrain = 32768;

template <class Inner>
void for_each_row(const StridedPlan& p, Inner&& inner) {
  if (p.numel == 0) return;
  const int K = p.num_operands;
  int64_t st[kMaxOperands] = {};
  if (p.ndim == 0) {
    int64_t off[kMaxOperands] = {};
    inner(off, st, int64_t{1});
    return;
  }
  const int last = p.ndim - 1;
  const int64_t n = p.sizes[last];
  for (int k = 0; k < K; ++k) st[k] = p.strides[k][last];
  const int64_t rows = p.numel / n;
  if (rows == 1) {
    // One long row: cut it into chunks so both cores get work.
    const int64_t chunk = std::max<int64_t>(kParallelGrain / 4, 1024);
    const int64_t nchunks = (n + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (n >= kParallelGrain)
    for (int64_t c = 0; c < nchunks; ++c) {
      int64_t off[kMaxOperands];
      for (int k = 0; k < K; ++k) off[k] = c * chunk * st[k];
      inner(off, st, std::min(chunk, n - c * chunk));
    }
    return;
  }
#pragma omp parallel for schedule(static) if (p.numel >= kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    int64_t off[kMaxOperands] = {};
    int64_t rem = r;
    for (int d = last - 1; d >= 0; --d) {
      const int64_t i = rem % p.sizes[d];
      rem /= p.sizes[d];
      for (int k = 0; k < K; ++k) off[k] += i * p.strides[k][d];
    }
    inner(off, st, n);
  }
}

}  // namespace gndet::cpu
