// Indexing ops. Index tensors are int64 (int32 accepted); every index is range-checked and a bad
// one raises gndet::Error naming the op, the index and the valid range.
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

// A tensor seen as (outer, dim, inner) around the indexed dimension. Kernels take contiguous
// tensors and this geometry: `src_dim` is the indexed tensor's size along dim, `idx_dim` the
// index (and output) size along it.
struct IndexGeometry {
  int64_t outer = 1;
  int64_t src_dim = 1;
  int64_t idx_dim = 1;
  int64_t inner = 1;
};

// The dtype rule of the index kernels, shared by the CPU and CUDA files: copying ops (gather,
// index_select) take every dtype, bool masks included; accumulating ops (scatter_add, index_add)
// only numbers. Indices are int64 or int32. f is called as f.template operator()<T, I>().
template <class F>
void dispatch_value_and_index(const Tensor& values, const Tensor& idx, const char* op, F&& f) {
  dispatch_all(values.dtype(), op, [&]<class T>() {
    dispatch_index(idx.dtype(), op, [&]<class I>() { f.template operator()<T, I>(); });
  });
}
template <class F>
void dispatch_number_and_index(const Tensor& values, const Tensor& idx, const char* op, F&& f) {
  dispatch_numeric(values.dtype(), op, [&]<class T>() {
    dispatch_index(idx.dtype(), op, [&]<class I>() { f.template operator()<T, I>(); });
  });
}

// out[o, i, n] = src[o, idx[o, i, n], n]
GNDET_DECLARE_KERNEL(gather_kernel, void(const Tensor& out, const Tensor& src, const Tensor& idx, IndexGeometry g));
// out[o, idx[o, i, n], n] += src[o, i, n]   (out is updated in place)
GNDET_DECLARE_KERNEL(scatter_add_kernel, void(const Tensor& out, const Tensor& idx, const Tensor& src, IndexGeometry g));
// out[o, k, n] = src[o, idx[k], n]
GNDET_DECLARE_KERNEL(index_select_kernel, void(const Tensor& out, const Tensor& src, const Tensor& idx, IndexGeometry g));
// out[o, idx[k], n] += src[o, k, n]   (out is updated in place)
GNDET_DECLARE_KERNEL(index_add_kernel, void(const Tensor& out, const Tensor& idx, const Tensor& src, IndexGeometry g));
// Coordinates of the true elements of a contiguous bool tensor, (K, ndim) int64, row-major order.
GNDET_DECLARE_KERNEL(nonzero_kernel, Tensor(const Tensor& mask));

// x: any shape; idx: 1-D. Result: x's shape with size len(idx) along dim.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& idx);
// Non-differentiable accumulation: a copy of x with src's slices added at idx along dim.
Tensor index_add(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src);
// idx has x's number of dims and x's sizes except along dim. Result has idx's shape.
Tensor gather(const Tensor& x, int64_t dim, const Tensor& idx);
// A copy of x with src[..] added at x[.. idx ..] along dim; idx and src have one shape.
// Differentiable in x and src.
Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src);
// x where mask is false, value where it is true (mask broadcast to x's shape).
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value);
// (K, x.dim()) int64 coordinates of x's non-zero elements in row-major order. No gradient.
Tensor nonzero(const Tensor& x);
// 1-D int64 positions of the true elements of a 1-D bool tensor: nonzero(mask).flatten().
Tensor nonzero_1d(const Tensor& mask);
// Rows of x (along dim 0) where the 1-D bool mask is true.
Tensor masked_select_rows(const Tensor& x, const Tensor& mask);

}  // namespace gndet
