// Winograd F(4x4, 3x3) convolution on the CPU (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016), for the 3x3 / stride-1 / undilated / ungrouped float32 convolutions
// that make up most of a GN Mask R-CNN's arithmetic: the FPN output convs, the RPN conv, the
// 4 convs of the box head (1000 RoIs of 7x7) and of the mask head.
//
// Each 4x4 block of outputs is computed from the 6x6 block of inputs around it with 36
// multiplications per (input channel, output channel) instead of 144: the input block d and the
// kernel g are transformed (V = B^T d B, U = G g G^T), multiplied position by position and summed
// over input channels, which for all blocks at once is 36 GEMMs M_xi (C_out, tiles) =
// U_xi (C_out, C_in) * V_xi (C_in, tiles), and transformed back (Y = A^T M A).
//
// Numerics: the transforms add rounding that direct convolution does not have (the interpolation
// points 0, +-1, +-2 make B^T's and A^T's entries as large as 8); U is computed in double and
// rounded once. tests/ops/test_conv.cpp bounds the difference to a double-precision direct
// convolution; GNDET_WINOGRAD=0 turns the algorithm off (for accuracy studies and A/B timing).
#pragma once

#include <cstdint>

#include "ops/conv_geometry.h"

namespace gndet::winograd {

// False when the environment sets GNDET_WINOGRAD=0 (read once).
bool enabled();

// Whether conv2d's CPU kernel computes this float32 geometry by Winograd (forward: as given;
// input gradient: the same convolution, transposed).
bool applies(const ConvGeometry& g);

// The same for the weight gradient, which needs more positions to pay.
bool applies_to_weight_gradient(const ConvGeometry& g);

// y (N, C_out, H_out, W_out) = conv(x, w) + b for a geometry `applies` accepted; b may be null.
void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);

// dx (N, C_in, H, W) = the input gradient of that convolution for dy (N, C_out, H_out, W_out):
// itself a 3x3 convolution of dy, with the kernel flipped and its channel axes swapped, and
// padding 2 - p. Requires 2 - p >= 0 and the sizes of a stride-1 convolution.
void conv2d_backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx);

// dw (C_out, C_in, 3, 3) = the weight gradient of that convolution for dy, from x: the adjoint of
// the forward's arithmetic (dU = sum over tiles of (A dy A^T) . (B^T x B), dw = G^T dU G).
void conv2d_backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw);

}  // namespace gndet::winograd
