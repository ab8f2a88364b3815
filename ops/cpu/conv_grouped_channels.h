// The grouped 3x3 convolutions of ResNeXt's layer2-4 (8 or more channels per group) with their
// vectors along the channels, not along the positions. Internal to ops/cpu: conv_grouped.cpp
// sends these geometries here.
//
// Why: a vector of 16 positions needs the taps' columns in its lanes, which at stride 2 costs a
// vpermt2ps per tap and vector on port 5, one of the two multiply-add ports (3 per 24
// multiply-adds), and leaves 16 lanes per weight to add up in the weight gradient. A vector of 16
// channels needs none of it: each tap's source value is one broadcast, shared by the positions
// that read it or folded into the multiply-add as a memory operand, at any stride; the price is a
// 16 x 16 transposition in registers where positions meet channel rows (dy in the weight
// gradient, the outputs of the other two).
// - forward: 16 output channels x 24 (12, 6) positions of one row, or with 32k per group
//   (layer4) 32 x 12 (6); per input channel and kernel row 3 weight vectors per 16 channels, and
//   each x column broadcast once (2 P + 1 at stride 2 for 3 P multiply-adds per vector);
// - input gradient: 16 input channels x 24 (12, 6) positions of one dx row, each dy column
//   broadcast once (about P / 2 at stride 2 for 3 P / 2 multiply-adds); at stride 2 only from
//   32 dy channels per group, where the transposition is small beside the sums;
// - weight gradient: 16 or 32 output channels x 4 or 2 input channels x the 3 kernel columns of
//   one kernel row (12 sums) over a band's positions, 4 or 2 at a time: per step 4 loads of dy
//   (transposed per band) and 48 or 24 multiply-adds, each x value they read broadcast once from
//   memory (at stride 1 24 or 8 broadcasts).
// With 8 channels per group (layer2) at stride 1 across, a vector holds 8 channels at 2 adjacent
// positions, each tap's sources a pair of adjacent columns (one 64-bit broadcast from x or dy; at
// stride 2 the two positions' columns are 2 apart): the forward and input gradient 8 channels x
// 24 (12, 6) positions (two rows at a time at stride 1 down: each pair feeds both rows' taps, since
// on Ice Lake a broadcast from memory issues at one per cycle, half a vector load's rate), the
// weight gradient dy transposed as pairs of positions, 8 output channels x 4 input channels x 3
// kernel columns over 4 pairs per step (each pair of x columns broadcast once for the step's
// taps that read it), a pair's 2 lanes added at the end.
// Each output element is summed by one thread in an order fixed by the geometry (the positions'
// blocks never change a sum's order), and each group's weight gradient too (float over a band's
// rows, then double across bands and images), so no result depends on the thread count.
#pragma once

#include "ops/conv_geometry.h"

namespace gndet::grouped::channels {

// Each: strides 1-2 each way, pw = 1, 16k channels per group along the vectors (output channels
// in the forward and weight gradient, input channels in the input gradient), or 8 at stride 1
// across; rows of at least 12 output (forward) or input (input gradient) columns; asked only
// where grouped::applies holds (AVX-512, 3x3, undilated).
bool applies(const ConvGeometry& g);
// y = conv(x, w) + b (b may be null); dx, dw overwritten. Shapes as in ops/conv.h.
void forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);

// Stride 2 only with 32k dy channels per group.
bool applies_to_input_gradient(const ConvGeometry& g);
void backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx);

// With 8 (16k or 8 output channels) or 4 (32k) dividing the input channels; any row width.
bool applies_to_weight_gradient(const ConvGeometry& g);
void backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw);

}  // namespace gndet::grouped::channels
