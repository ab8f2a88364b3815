// CPU kernels for indexing. Bad indices are collected inside the parallel loops (an exception
// may not leave an OpenMP region) and reported once after them.
#include <atomic>

#include "ops/index.h"
#include "tensor/cpu_loop.h"
#include "tensor/factory.h"

namespace gndet {
namespace {

// Remembers the first out-of-range index seen by any thread.
struct BadIndex {
  std::atomic<bool> seen{false};
  std::atomic<int64_t> value{0};
  void note(int64_t v) {
    bool expected = false;
    if (seen.compare_exchange_strong(expected, true)) value = v;
  }
  void raise_if_any(const char* op, int64_t size) const {
    GNDET_CHECK(!seen, op, ": index ", value.load(), " is out of range for a dimension of size ", size);
  }
};

void gather_cpu(const Tensor& out, const Tensor& src, const Tensor& idx, IndexGeometry g) {
  BadIndex bad;
  dispatch_value_and_index(src, idx, "gather", [&]<class T, class I>() {
    T* o = static_cast<T*>(out.raw_data());
    const T* s = static_cast<const T*>(src.raw_data());
    const I* ix = static_cast<const I*>(idx.raw_data());
#pragma omp parallel for schedule(static) if (out.numel() >= cpu::kParallelGrain)
    for (int64_t a = 0; a < g.outer; ++a) {
      for (int64_t i = 0; i < g.idx_dim; ++i) {
        for (int64_t n = 0; n < g.inner; ++n) {
          const int64_t pos = (a * g.idx_dim + i) * g.inner + n;
          const int64_t k = ix[pos];
          if (k < 0 || k >= g.src_dim) {
            bad.note(k);
            continue;
          }
          o[pos] = s[(a * g.src_dim + k) * g.inner + n];
        }
      }
    }
  });
  bad.raise_if_any("gather", g.src_dim);
}

void index_select_cpu(const Tensor& out, const Tensor& src, const Tensor& idx, IndexGeometry g) {
  BadIndex bad;
  dispatch_value_and_index(src, idx, "index_select", [&]<class T, class I>() {
    T* o = static_cast<T*>(out.raw_data());
    const T* s = static_cast<const T*>(src.raw_data());
    const I* ix = static_cast<const I*>(idx.raw_data());
#pragma omp parallel for collapse(2) schedule(static) if (out.numel() >= cpu::kParallelGrain)
    for (int64_t a = 0; a < g.outer; ++a) {
      for (int64_t i = 0; i < g.idx_dim; ++i) {
        const int64_t k = ix[i];
        if (k < 0 || k >= g.src_dim) {
          bad.note(k);
          continue;
        }
        const T* from = s + (a * g.src_dim + k) * g.inner;
        std::copy(from, from + g.inner, o + (a * g.idx_dim + i) * g.inner);
      }
    }
  });
  bad.raise_if_any("index_select", g.src_dim);
}

// Scatters are serial over the indexed dimension: two indices may name the same target.
void scatter_add_cpu(const Tensor& out, const Tensor& idx, const Tensor& src, IndexGeometry g) {
  BadIndex bad;
  dispatch_number_and_index(src, idx, "scatter_add", [&]<class T, class I>() {
    T* o = static_cast<T*>(out.raw_data());
    const T* s = static_cast<const T*>(src.raw_data());
    const I* ix = static_cast<const I*>(idx.raw_data());
#pragma omp parallel for schedule(static) if (src.numel() >= cpu::kParallelGrain)
    for (int64_t a = 0; a < g.outer; ++a) {
      for (int64_t i = 0; i < g.idx_dim; ++i) {
        for (int64_t n = 0; n < g.inner; ++n) {
          const int64_t pos = (a * g.idx_dim + i) * g.inner + n;
          const int64_t k = ix[pos];
          if (k < 0 || k >= g.src_dim) {
            bad.note(k);
            continue;
          }
          o[(a * g.src_dim + k) * g.inner + n] += s[pos];
        }
      }
    }
  });
  bad.raise_if_any("scatter_add", g.src_dim);
}

void index_add_cpu(const Tensor& out, const Tensor& idx, const Tensor& src, IndexGeometry g) {
  BadIndex bad;
  dispatch_number_and_index(src, idx, "index_add", [&]<class T, class I>() {
    T* o = static_cast<T*>(out.raw_data());
    const T* s = static_cast<const T*>(src.raw_data());
    const I* ix = static_cast<const I*>(idx.raw_data());
#pragma omp parallel for schedule(static) if (src.numel() >= cpu::kParallelGrain)
    for (int64_t a = 0; a < g.outer; ++a) {
      for (int64_t i = 0; i < g.idx_dim; ++i) {
        const int64_t k = ix[i];
        if (k < 0 || k >= g.src_dim) {
          bad.note(k);
          continue;
        }
        T* to = o + (a * g.src_dim + k) * g.inner;
        const T* from = s + (a * g.idx_dim + i) * g.inner;
        for (int64_t n = 0; n < g.inner; ++n) to[n] += from[n];
      }
    }
  });
  bad.raise_if_any("index_add", g.src_dim);
}

Tensor nonzero_cpu(const Tensor& mask) {
  const bool* m = static_cast<const bool*>(mask.raw_data());
  const int64_t n = mask.numel(), nd = mask.dim();
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += m[i] ? 1 : 0;
  Tensor out = empty({count, nd}, kInt64);
  int64_t* o = out.data<int64_t>();
  int64_t row = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (!m[i]) continue;
    int64_t rem = i;
    for (int64_t d = nd - 1; d >= 0; --d) {
      o[row * nd + d] = rem % mask.shape()[d];
      rem /= mask.shape()[d];
    }
    ++row;
  }
  return out;
}

}  // namespace

GNDET_REGISTER_KERNEL(gather_kernel, CPU, gather_cpu);
GNDET_REGISTER_KERNEL(scatter_add_kernel, CPU, scatter_add_cpu);
GNDET_REGISTER_KERNEL(index_select_kernel, CPU, index_select_cpu);
GNDET_REGISTER_KERNEL(index_add_kernel, CPU, index_add_cpu);
GNDET_REGISTER_KERNEL(nonzero_kernel, CPU, nonzero_cpu);

}  // namespace gndet
