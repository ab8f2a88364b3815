// The grouped 3x3 convolutions at stride 2 with one column of padding (ResNeXt's strided 3 x 3s,
// the first block of layers 2-4), read straight from the tensors: no padded band of the source,
// no phase rows. Internal to ops/cpu: conv_grouped.cpp sends these geometries here.
//
// Why: a band (the source's rows padded and split by column phase, what conv_grouped.cpp's other
// paths read) costs a copy and a second read of the source, and at stride 2 its blocks sum few
// taps each. Here every kernel column's phase is picked from the tensor in registers:
// - forward: output column j of kernel column kx reads x column 2 j + kx - 1, every second float
//   of two loads (one vpermt2ps per tap and 16 outputs, shared by 8 output channels);
// - input gradient: dx columns 2 b and 2 b + 1 take dy columns b and b + 1 as they are (no
//   shuffle); both phases are summed in one block and interleaved in registers on the way out;
// - weight gradient: the x columns of kernel columns 0-2 are picked from four loads by three
//   vpermt2ps per 16 positions, each x vector multiplied by 8 output channels' dy (packed per band
//   of rows, so that its rows end in zeros and need no masks).
// With 16k channels per group conv_grouped_channels.h takes the forward and the weight gradient
// first (its vectors along the channels: no shuffles), and the input gradient from 32 dy channels
// per group: what comes here is ResNeXt's layer2 (8 per group) and layer3's input gradient.
// Each output element (and each group's weight gradient) is summed by one thread in an order fixed
// by the geometry, so no result depends on the thread count.
#pragma once

#include "ops/conv_geometry.h"

namespace gndet::grouped::strided {

// Stride 2 both ways, pw = 1, output channels per group a multiple of 8 (and what
// grouped::applies asks: AVX-512, 3x3, undilated, 4-64 channels per group).
bool applies(const ConvGeometry& g);

// y = conv(x, w) + b (b may be null); dx, dw overwritten. Shapes as in ops/conv.h.
void forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);
void backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx);
void backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw);

}  // namespace gndet::grouped::strided
