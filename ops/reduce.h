// Reductions over any set of dimensions. Negative dims count from the end; an empty `dims` list
// in the overloads without it means "all dimensions". Sums of float tensors accumulate in double
// on the CPU and in float with a tree reduction on CUDA.
#pragma once

#include <vector>

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

// out: (M) contiguous; in: (M, R) contiguous. out[m] = scale * sum_r in[m, r].
GNDET_DECLARE_KERNEL(sum_rows_kernel, void(const Tensor& out, const Tensor& in, double scale));
// out: (N) contiguous; in: (R, N) contiguous. out[n] = scale * sum_r in[r, n].
GNDET_DECLARE_KERNEL(sum_cols_kernel, void(const Tensor& out, const Tensor& in, double scale));
// out: (M); in: (M, R). out[m] = sum_r (in[m, r] - mean_m)^2 / (R - ddof), two passes.
GNDET_DECLARE_KERNEL(var_rows_kernel, void(const Tensor& out, const Tensor& in, double ddof));
// values, indices (int64): (M); in: (M, R). First index of the max (or min); NaN wins.
GNDET_DECLARE_KERNEL(extremum_rows_kernel,
                     void(const Tensor& values, const Tensor& indices, const Tensor& in, bool is_max));

// Sum; bool and uint8 inputs are summed as int64.
Tensor sum(const Tensor& x);
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim = false);
// Variance; unbiased divides by R - 1 (Bessel), else by R. var(x, {}, false): biased, all dims.
Tensor var(const Tensor& x);
Tensor var(const Tensor& x, const std::vector<int64_t>& dims, bool unbiased = true, bool keepdim = false);

struct ValuesIndices {
  Tensor values;
  Tensor indices;  // int64
};
// Max / min along one dimension; the gradient flows to the first extremal element.
ValuesIndices max(const Tensor& x, int64_t dim, bool keepdim = false);
ValuesIndices min(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor max(const Tensor& x);  // over all elements, 0-dim
Tensor min(const Tensor& x);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim = false);

// Sums a broadcast gradient back to `shape` (the inverse of broadcasting `shape` to grad's).
Tensor sum_to(const Tensor& grad, const Shape& shape);

}  // namespace gndet
