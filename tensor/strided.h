// StridedPlan: how an elementwise kernel walks up to kMaxOperands tensors of one broadcast shape.
// Operand 0 is the output. Broadcast dimensions have stride 0; dimensions that are contiguous in
// every operand are merged, so a plain (N,C,H,W) add becomes one flat loop. The struct is plain
// data so that CUDA kernels take it by value.
#pragma once

#include <cstdint>

#include "tensor/error.h"

namespace gndet {

class Tensor;

inline constexpr int kMaxDims = 8;
inline constexpr int kMaxOperands = 4;

struct StridedPlan {
  int ndim = 0;          // after merging; 0 means a single element
  int num_operands = 0;
  int64_t numel = 0;
  int64_t sizes[kMaxDims] = {};                  // innermost dimension last
  int64_t strides[kMaxOperands][kMaxDims] = {};  // in elements
  bool contiguous = false;  // every operand is dense and in the same order: flat index works
};

// The shape that `a` and `b` broadcast to (numpy rules), or throws naming `op`.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Plan for writing `out` from `inputs`, each broadcast to out's shape (throws naming `op` if one
// cannot be). Strides are relative to each tensor's raw_data(), which already applies its offset.
StridedPlan make_plan(const Tensor& out, const Tensor* const* inputs, int num_inputs, const char* op);

// Offset of linear element `i` (row-major over plan.sizes) for operand `k`.
#if defined(__CUDACC__)
__host__ __device__
#endif
inline int64_t plan_offset(const StridedPlan& p, int k, int64_t i) {
  int64_t off = 0;
  for (int d = p.ndim - 1; d >= 0; --d) {
    const int64_t s = p.sizes[d];
    off += (i % s) * p.strides[k][d];
    i /= s;
  }
  return off;
}

}  // namespace gndet
