// The sizes of one convolution y = conv(x, w), read from the tensors that play x, y and w. One
// struct for the CPU kernels (ops/cpu/conv.cpp) and the CUDA kernels (ops/cuda/conv.cu, which take
// it by value): plain data, its helpers callable on host and device.
#pragma once

#include <cstdint>

#include "ops/conv.h"
#include "ops/elementwise_functors.h"  // GNDET_HD

namespace gndet {

struct ConvGeometry {
  int64_t N, C_in, H, W;        // x
  int64_t C_out, H_out, W_out;  // y
  int64_t kh, kw, sh, sw, ph, pw, dh, dw, groups;

  GNDET_HD int64_t cin_g() const { return C_in / groups; }
  GNDET_HD int64_t cout_g() const { return C_out / groups; }
  GNDET_HD int64_t K() const { return cin_g() * kh * kw; }  // rows of one group's column matrix
  GNDET_HD int64_t P() const { return H_out * W_out; }      // output positions per image
  GNDET_HD int64_t HW() const { return H * W; }
  // Output position p reads input position p: the column matrix is the input itself.
  GNDET_HD bool pointwise() const {
    return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0 && H_out == H && W_out == W;
  }
};

inline ConvGeometry conv_geometry(const Tensor& x, const Tensor& y, const Tensor& w, const Conv2dParams& p) {
  return {x.size(0),     x.size(1),     x.size(2),     x.size(3),     y.size(1),      y.size(2),
          y.size(3),     w.size(2),     w.size(3),     p.stride[0],   p.stride[1],    p.padding[0],
          p.padding[1],  p.dilation[0], p.dilation[1], p.groups};
}

}  // namespace gndet
