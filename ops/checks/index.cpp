// Gradcheck cases for indexing: index_select, gather, scatter_add, masked_fill.
#include "ops/checks/check_util.h"
#include "ops/index.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("index_select", "rows with a repeated index") {
  const Tensor idx = on_check_device(from_data<int64_t>({2, 0, 2}));
  return gradcheck([idx](T in) { return index_select(in[0], 0, idx); }, {uniform({4, 3}, 49)});
}
GNDET_GRADCHECK("index_select", "middle dimension") {
  const Tensor idx = on_check_device(from_data<int64_t>({1, 1, 0}));
  return gradcheck([idx](T in) { return index_select(in[0], 1, idx); }, {uniform({2, 3, 2}, 50)});
}
GNDET_GRADCHECK("gather", "dim 1 with repeats") {
  const Tensor idx = on_check_device(from_data<int64_t>({0, 2, 2, 1, 1, 0}, {2, 3}));
  return gradcheck([idx](T in) { return gather(in[0], 1, idx); }, {uniform({2, 4}, 51)});
}
GNDET_GRADCHECK("scatter_add", "dim 0 into x, gradients to x and src") {
  const Tensor idx = on_check_device(from_data<int64_t>({0, 1, 0, 2, 2, 0}, {2, 3}));
  return gradcheck([idx](T in) { return scatter_add(in[0], 0, idx, in[1]); }, {uniform({3, 3}, 52), uniform({2, 3}, 53)});
}
GNDET_GRADCHECK("masked_fill", "broadcast mask") {
  const Tensor mask = on_check_device(from_data<bool>({true, false, true}, {1, 3}));
  return gradcheck([mask](T in) { return masked_fill(in[0], mask, 7.0); }, {uniform({2, 3}, 54)});
}

}  // namespace gndet::checks
