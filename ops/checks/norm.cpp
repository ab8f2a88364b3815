// Gradcheck cases for group_norm, group_norm_relu, weight_standardization and frozen_batch_norm.
#include "ops/checks/check_util.h"
#include "ops/norm.h"

namespace gndet::checks {

using T = const Tensors&;

namespace {
GradcheckResult check_gn(const Shape& x_shape, int64_t groups, bool affine, uint64_t seed) {
  const int64_t C = x_shape[1];
  if (!affine) {
    return gradcheck([groups](T in) { return group_norm(in[0], groups, Tensor(), Tensor()); },
                     {uniform(x_shape, seed, -2.0, 2.0)});
  }
  return gradcheck([groups](T in) { return group_norm(in[0], groups, in[1], in[2]); },
                   {uniform(x_shape, seed, -2.0, 2.0), uniform({C}, seed + 1, 0.5, 1.5), uniform({C}, seed + 2)});
}
}  // namespace

GNDET_GRADCHECK("group_norm", "G = 1 (all channels one group), affine") { return check_gn({2, 3, 2, 3}, 1, true, 160); }
GNDET_GRADCHECK("group_norm", "G = 2, no affine, 3-d input") { return check_gn({3, 4, 5}, 2, false, 163); }
GNDET_GRADCHECK("group_norm", "G = 32, 64 channels, affine") { return check_gn({1, 64, 2, 2}, 32, true, 164); }
GNDET_GRADCHECK("group_norm", "C == G = 4 (instance norm), affine") { return check_gn({2, 4, 3, 2}, 4, true, 167); }
GNDET_GRADCHECK("group_norm", "H x W == 1, G = 2 (box-head-like vectors)") { return check_gn({3, 6, 1, 1}, 2, true, 170); }
GNDET_GRADCHECK("group_norm", "input with a large mean (centring matters)") {
  return gradcheck([](T in) { return group_norm(in[0] + 50.0, 2, in[1], in[2]); },
                   {uniform({2, 4, 3}, 173), uniform({4}, 174, 0.5, 1.5), uniform({4}, 175)});
}

// group_norm_relu: the finite differences must not straddle the kink; with these seeds no output
// lies within a step of 0 (a straddled kink would show as a FAIL). That the fused op equals
// relu(group_norm) bit for bit is checked in tests/ops/test_norm.cpp.
GNDET_GRADCHECK("group_norm_relu", "G = 2, affine, (2, 4, 3, 2)") {
  return gradcheck([](T in) { return group_norm_relu(in[0], 2, in[1], in[2]); },
                   {uniform({2, 4, 3, 2}, 176, -2.0, 2.0), uniform({4}, 177, 0.5, 1.5), uniform({4}, 178)});
}
GNDET_GRADCHECK("group_norm_relu", "G = 4, no affine, 3-d input") {
  return gradcheck([](T in) { return group_norm_relu(in[0], 4, Tensor(), Tensor()); }, {uniform({3, 8, 5}, 179, -2.0, 2.0)});
}

GNDET_GRADCHECK("weight_standardization", "(4, 3, 3, 3) conv weight") {
  return gradcheck([](T in) { return weight_standardization(in[0]); }, {uniform({4, 3, 3, 3}, 180)});
}
GNDET_GRADCHECK("weight_standardization", "(3, 2, 1, 1) pointwise weight, eps 0.1") {
  return gradcheck([](T in) { return weight_standardization(in[0], 0.1); }, {uniform({3, 2, 1, 1}, 181)});
}

GNDET_GRADCHECK("frozen_batch_norm", "4-d input, buffers not differentiated") {
  const Tensor w = uniform({3}, 190, 0.5, 1.5).detach(), b = uniform({3}, 191).detach();
  const Tensor mean = uniform({3}, 192).detach(), var = uniform({3}, 193, 0.5, 2.0).detach();
  return gradcheck([=](T in) { return frozen_batch_norm(in[0], w, b, mean, var); }, {uniform({2, 3, 2, 3}, 194)});
}
GNDET_GRADCHECK("frozen_batch_norm", "2-d input (N, C), eps 0") {
  const Tensor w = uniform({4}, 195).detach(), b = uniform({4}, 196).detach();
  const Tensor mean = uniform({4}, 197).detach(), var = uniform({4}, 198, 0.5, 2.0).detach();
  return gradcheck([=](T in) { return frozen_batch_norm(in[0], w, b, mean, var, 0.0); }, {uniform({3, 4}, 199)});
}

}  // namespace gndet::checks
