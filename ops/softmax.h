// softmax and log_softmax along one dimension, numerically stable (the row max is subtracted).
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"

namespace gndet {

// out, in: (M, R) contiguous; softmax (or log_softmax when `log`) of each row.
GNDET_DECLARE_KERNEL(softmax_rows_kernel, void(const Tensor& out, const Tensor& in, bool log));
// grad_in = y * (g - sum(g * y))            (softmax)
// grad_in = g - exp(y) * sum(g)             (log_softmax, y = log-probabilities)
// all (M, R) contiguous.
GNDET_DECLARE_KERNEL(softmax_backward_rows_kernel,
                     void(const Tensor& grad_in, const Tensor& grad_out, const Tensor& y, bool log));

Tensor softmax(const Tensor& x, int64_t dim = -1);
Tensor log_softmax(const Tensor& x, int64_t dim = -1);

}  // namespace gndet
