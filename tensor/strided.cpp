#include "tensor/strided.h"

#include "tensor/tensor.h"

namespace gndet {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    GNDET_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", shape_str(a), " and ", shape_str(b),
                " cannot be broadcast together (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

StridedPlan make_plan(const Tensor& out, const Tensor* const* inputs, int num_inputs, const char* op) {
  GNDET_CHECK(num_inputs + 1 <= kMaxOperands, op, ": too many operands");
  const Shape& shape = out.shape();
  const int D = static_cast<int>(shape.size());
  const int K = num_inputs + 1;

  // Full-rank strides per operand, 0 where an input is broadcast.
  std::vector<std::vector<int64_t>> strides(K, std::vector<int64_t>(D, 0));
  for (int d = 0; d < D; ++d) strides[0][d] = out.strides()[d];
  for (int k = 1; k < K; ++k) {
    const Tensor& in = *inputs[k - 1];
    const int nd = static_cast<int>(in.dim());
    GNDET_CHECK(nd <= D, op, ": input of shape ", shape_str(in.shape()), " has more dimensions than the output ",
                shape_str(shape));
    for (int d = 0; d < nd; ++d) {
      const int od = D - nd + d;
      const int64_t s = in.shape()[d];
      GNDET_CHECK(s == shape[od] || s == 1, op, ": input of shape ", shape_str(in.shape()),
                  " cannot be broadcast to ", shape_str(shape));
      strides[k][od] = (s == 1) ? 0 : in.strides()[d];
    }
  }

  StridedPlan p;
  p.num_operands = K;
  p.numel = shape_numel(shape);
  // Keep dims of size > 1, outermost first, merging a dim into the next inner one when every
  // operand steps through them as one run.
  std::vector<int64_t> sizes;
  std::vector<std::vector<int64_t>> merged(K);
  for (int d = 0; d < D; ++d) {
    if (shape[d] == 1) continue;
    bool merge = !sizes.empty();
    for (int k = 0; merge && k < K; ++k) merge = merged[k].back() == strides[k][d] * shape[d];
    if (merge) {
      sizes.back() *= shape[d];
      for (int k = 0; k < K; ++k) merged[k].back() = strides[k][d];
    } else {
      sizes.push_back(shape[d]);
      for (int k = 0; k < K; ++k) merged[k].push_back(strides[k][d]);
    }
  }
  GNDET_CHECK(sizes.size() <= static_cast<size_t>(kMaxDims), op, ": at most ", kMaxDims,
              " non-mergeable dimensions are supported, shape ", shape_str(shape));
  p.ndim = static_cast<int>(sizes.size());
  for (int d = 0; d < p.ndim; ++d) {
    p.sizes[d] = sizes[d];
    for (int k = 0; k < K; ++k) p.strides[k][d] = merged[k][d];
  }
  p.contiguous = p.ndim == 0;
  if (p.ndim == 1) {
    p.contiguous = true;
    for (int k = 0; k < K; ++k) p.contiguous = p.contiguous && p.strides[k][0] == 1;
  }
  return p;
}

}  // namespace gndet
