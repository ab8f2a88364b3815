// Sorting along a dimension. Sorts are stable (equal keys keep their order) and NaN sorts as the
// largest value, so results are deterministic and identical on CPU and CUDA.
#pragma once

#include "ops/reduce.h"
#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

// values, indices: (M, R); in: (M, R) contiguous. Each row sorted.
GNDET_DECLARE_KERNEL(sort_rows_kernel,
                     void(const Tensor& values, const Tensor& indices, const Tensor& in, bool descending));
// values, indices: (M, k); in: (M, R) contiguous. The k largest (or smallest) of each row, in
// sorted order, ties broken by lower index.
GNDET_DECLARE_KERNEL(topk_rows_kernel,
                     void(const Tensor& values, const Tensor& indices, const Tensor& in, int64_t k, bool largest));

// Differentiable in the values.
ValuesIndices sort(const Tensor& x, int64_t dim = -1, bool descending = false);
ValuesIndices topk(const Tensor& x, int64_t k, int64_t dim = -1, bool largest = true);
// Indices that sort x along dim.
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);

}  // namespace gndet
