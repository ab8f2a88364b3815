// Direct convolution on the CPU for grouped 3x3 convolutions with few channels per group: ResNeXt
// 32x4d's bottleneck convs (4, 8, 16 and 32 channels per group in layers 1-4).
//
// Why not im2col + GEMM: one group's product is (C_out/G, 9 C_in/G) x (9 C_in/G, positions), a
// GEMM 4 rows tall in layer1, so every column element that im2col writes and the GEMM packs is
// used by 4 multiply-adds: the copies cost more than the arithmetic (bench/cpu_layers: 0.06-0.10
// of the fp32 peak). Here each input value is loaded from L1 into a register once per kernel tap
// and used by 4 output channels x 16 positions at a time, with no column matrix at all.
//
// Data flow, for the forward and the input gradient alike: a band of output rows of one (image,
// group) is computed from a padded copy of the source rows it needs (zeros around, columns split
// by stride phase so that every tap reads 16 consecutive floats), or at stride 1 straight from
// the source with the row's ends loaded under masks, summing over the source channels and a
// per-row list of kernel taps. The input gradient is the same sum with dy as the source, the taps
// that reach each dx row and column phase, and the kernel's channel axes swapped. The weight
// gradient sums dy x shifted x over the positions (at stride 1 straight from both tensors), for
// each group on one thread (the result does not depend on the thread count). At stride 2 with
// padding 1 across (ResNeXt's strided 3 x 3s) all three read straight from the tensors, the
// column phases picked in registers: conv_grouped_strided.h.
#pragma once

#include "ops/conv_geometry.h"

namespace gndet::grouped {

// False when the environment sets GNDET_GROUPED_DIRECT=0 (read once): grouped convolutions then
// take im2col + GEMM, for A/B timing.
bool enabled();

// Whether the float32 kernels below take this geometry (and enabled()): built with AVX-512, grouped, 3x3,
// undilated, stride 1 or 2, padding 0-2, 4 to 64 channels per group each way in multiples of 4.
bool applies(const ConvGeometry& g);

// The weight gradient's kernel, for geometries `applies` takes with at most 32 input channels per
// group (ResNeXt 32x4d's layers 1-4). With 64 (32x8d's layer4) the two were level (186 GFLOP/s,
// standalone, 2026-12-07), a group's sums (16 lanes per weight) 2.4 MB, more than L2: im2col +
// GEMM keeps it.
bool applies_to_weight_gradient(const ConvGeometry& g);

// y = conv(x, w) + b (b may be null); dx, dw overwritten. Shapes as in ops/conv.h.
void conv2d_forward(const ConvGeometry& g, const float* x, const float* w, const float* b, float* y);
void conv2d_backward_input(const ConvGeometry& g, const float* dy, const float* w, float* dx);
void conv2d_backward_weight(const ConvGeometry& g, const float* dy, const float* x, float* dw);

}  // namespace gndet::grouped
