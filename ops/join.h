// Joining and splitting along a dimension.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace gndet {

// Tensors of one dtype and device whose shapes agree except along dim.
Tensor cat(const Tensors& tensors, int64_t dim = 0);
// Tensors of one shape, joined along a new dimension `dim`.
Tensor stack(const Tensors& tensors, int64_t dim = 0);
// Views of consecutive pieces of x along dim with the given sizes (which must sum to its size).
Tensors split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t dim = 0);
// Pieces of `size` (the last may be smaller).
Tensors split(const Tensor& x, int64_t size, int64_t dim = 0);

}  // namespace gndet
