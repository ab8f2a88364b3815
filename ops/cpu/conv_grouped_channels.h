// The grouped 3x3 convolutions of ResNeXt's wider groups (16 or more output channels each) with
// their vectors along the channels, not along the positions. Internal to ops/cpu:
// conv_grouped.cpp sends these geometries here.
//
// Why: a vector of 16 positions needs the taps' columns in its lanes, which at stride 2 costs a
// vpermt2ps per tap and vector on port 5, one of the two multiply-add ports (3 per 24
// multiply-adds in the weight gradient), and leaves 16 lanes per weight to add up at the end. A
// vector of 16 output channels needs none of it: each tap's x value is one broadcast, folded into
// its multiply-add as a memory operand, at any stride; dy's 16 channels at a position are one load
// once dy is transposed (per band of rows, 16 x 16 in registers: a few shuffles per 144-288
// multiply-adds).
// - weight gradient: 16 or 32 output channels x 8 or 4 input channels x the 3 kernel columns of
//   one kernel row (24 sums) over a band's positions: per position 1-2 loads of dy and 24
//   multiply-adds, each with its x broadcast from memory.
// Each group's weight gradient is summed by one thread in an order fixed by the geometry (float
// over a band's rows, then double across bands and images), so no result depends on the thread
// count.
#pragma once

#include "ops/conv_geometry.h"

namespace gndet::grouped::channels {

// The weight gradient: strides 1-2 each way, pw = 1, 16k output channels per group with 8 (16k)
// or 4 (32k) dividing the input channels (and what grouped::applies asks: AVX-512, 3x3,
// undilated).
bool applies_to_weight_gradient(const ConvGeometry& g);

// dw overwritten, shapes as in ops/conv.h.
void backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw);

}  // namespace gndet::grouped::channels
