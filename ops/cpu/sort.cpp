// CPU sort and top-k: per row, on an index permutation, with a comparator that puts NaN last
// (ascending) or first (descending) and breaks ties by index, so the order is total and stable.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "ops/sort.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  return false;
}

// a before b? "larger first" when descending; NaN counts as the largest value.
template <class T>
bool before(T a, int64_t ia, T b, int64_t ib, bool descending) {
  const bool na = is_nan(a), nb = is_nan(b);
  if (na || nb) {
    if (na && nb) return ia < ib;
    return descending ? na : nb;
  }
  if (a != b) return descending ? a > b : a < b;
  return ia < ib;
}

void sort_rows_cpu(const Tensor& values, const Tensor& indices, const Tensor& in, bool descending) {
  const int64_t M = in.size(0), R = in.size(1);
  dispatch_numeric(in.dtype(), "sort", [&]<class T>() {
    const T* x = static_cast<const T*>(in.raw_data());
    T* v = static_cast<T*>(values.raw_data());
    int64_t* idx = static_cast<int64_t*>(indices.raw_data());
#pragma omp parallel for schedule(dynamic) if (M > 1 && M * R >= cpu::kParallelGrain)
    for (int64_t m = 0; m < M; ++m) {
      const T* row = x + m * R;
      int64_t* order = idx + m * R;
      std::iota(order, order + R, int64_t{0});
      std::sort(order, order + R, [&](int64_t a, int64_t b) { return before(row[a], a, row[b], b, descending); });
      for (int64_t r = 0; r < R; ++r) v[m * R + r] = row[order[r]];
    }
  });
}

void topk_rows_cpu(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t k, bool largest) {
  const int64_t M = in.size(0), R = in.size(1);
  dispatch_numeric(in.dtype(), "topk", [&]<class T>() {
    const T* x = static_cast<const T*>(in.raw_data());
    T* v = static_cast<T*>(values.raw_data());
    int64_t* idx = static_cast<int64_t*>(indices.raw_data());
#pragma omp parallel for schedule(dynamic) if (M > 1 && M * R >= cpu::kParallelGrain)
    for (int64_t m = 0; m < M; ++m) {
      const T* row = x + m * R;
      std::vector<int64_t> order(static_cast<size_t>(R));
      std::iota(order.begin(), order.end(), int64_t{0});
      auto cmp = [&](int64_t a, int64_t b) { return before(row[a], a, row[b], b, largest); };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
      for (int64_t r = 0; r < k; ++r) {
        idx[m * k + r] = order[r];
        v[m * k + r] = row[order[r]];
      }
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(sort_rows_kernel, CPU, sort_rows_cpu);
GNDET_REGISTER_KERNEL(topk_rows_kernel, CPU, topk_rows_cpu);

}  // namespace gndet
