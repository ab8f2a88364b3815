// Gradcheck cases for conv2d and conv_transpose2d. Gradcheck sizes are small, so with
// N > 1 the CPU kernel batches whole images into one tile; N == 1 takes the in-place single-image
// path, and with 1x1 / stride 1 / no padding the path without im2col. (Larger shapes that reach
// the other paths are compared with a naive loop in tests/ops/test_conv.cpp.)
#include "ops/checks/check_util.h"
#include "ops/conv.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("conv2d", "3x3, padding 1, bias, batched small images") {
  return gradcheck([](T in) { return conv2d(in[0], in[1], in[2], {1, 1}, {1, 1}); },
                   {uniform({2, 3, 5, 4}, 100), uniform({4, 3, 3, 3}, 101), uniform({4}, 102)});
}
GNDET_GRADCHECK("conv2d", "stride 2, dilation 2, groups 2, no bias") {
  return gradcheck([](T in) { return conv2d(in[0], in[1], Tensor(), {2, 2}, {2, 1}, {2, 2}, 2); },
                   {uniform({2, 4, 7, 6}, 103), uniform({6, 2, 3, 3}, 104)});
}
GNDET_GRADCHECK("conv2d", "asymmetric kernel and stride, single image (in-place path)") {
  return gradcheck([](T in) { return conv2d(in[0], in[1], in[2], {2, 1}, {0, 1}, {1, 1}, 1); },
                   {uniform({1, 2, 6, 5}, 105), uniform({3, 2, 3, 2}, 106), uniform({3}, 107)});
}
GNDET_GRADCHECK("conv2d", "1x1 pointwise, groups 2, single image (no im2col)") {
  return gradcheck([](T in) { return conv2d(in[0], in[1], in[2], {1, 1}, {0, 0}, {1, 1}, 2); },
                   {uniform({1, 4, 3, 3}, 108), uniform({6, 2, 1, 1}, 109), uniform({6}, 110)});
}
GNDET_GRADCHECK("conv2d", "1x1 pointwise, batched small images") {
  return gradcheck([](T in) { return conv2d(in[0], in[1], Tensor()); },
                   {uniform({3, 3, 2, 3}, 111), uniform({2, 3, 1, 1}, 112)});
}
GNDET_GRADCHECK("conv2d", "16x16 outputs, two images") {
  return gradcheck([](T in) { return conv2d(in[0], in[1], in[2], {1, 1}, {1, 1}); },
                   {uniform({2, 1, 16, 16}, 113), uniform({2, 1, 3, 3}, 114), uniform({2}, 115)});
}
GNDET_GRADCHECK("conv2d", "weight only (input does not require grad)") {
  const Tensor x = uniform({2, 2, 4, 4}, 116).detach();
  return gradcheck([x](T in) { return conv2d(x, in[0], Tensor(), {1, 1}, {1, 1}); }, {uniform({3, 2, 3, 3}, 117)});
}

GNDET_GRADCHECK("conv_transpose2d", "kernel 2, stride 2, bias (mask head upsampling)") {
  return gradcheck([](T in) { return conv_transpose2d(in[0], in[1], in[2], {2, 2}); },
                   {uniform({2, 3, 3, 3}, 120), uniform({3, 4, 2, 2}, 121), uniform({4}, 122)});
}
GNDET_GRADCHECK("conv_transpose2d", "kernel 3, stride 2, padding 1, output_padding 1, groups 2, dilation 2") {
  return gradcheck(
      [](T in) { return conv_transpose2d(in[0], in[1], in[2], {2, 2}, {1, 1}, {1, 1}, {2, 2}, 2); },
      {uniform({2, 4, 3, 4}, 123), uniform({4, 3, 3, 3}, 124), uniform({6}, 125)});
}
GNDET_GRADCHECK("conv_transpose2d", "asymmetric stride (1, 2), kernel (2, 3), no bias") {
  return gradcheck([](T in) { return conv_transpose2d(in[0], in[1], Tensor(), {1, 2}, {0, 1}); },
                   {uniform({1, 2, 3, 3}, 126), uniform({2, 3, 2, 3}, 127)});
}

}  // namespace gndet::checks
