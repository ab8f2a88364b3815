// The convolution geometries of the CUDA parity tests (test_cuda_conv.cpp, test_cuda_autocast.cpp).
#pragma once

#include <vector>

#include "ops/conv.h"

namespace gndet::test {

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dParams p;
};

inline const std::vector<ConvCase> kCases = {
    {"3x3 pad 1", {2, 8, 13, 11}, {16, 8, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
    {"3x5 stride (2, 1) pad (1, 2)", {2, 6, 17, 14}, {10, 6, 3, 5}, {{2, 1}, {1, 2}, {1, 1}, 1}},
    {"dilation 2", {1, 4, 15, 15}, {6, 4, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 1}},
    {"dilation (2, 3) stride 2", {2, 3, 16, 19}, {5, 3, 3, 3}, {{2, 2}, {1, 0}, {2, 3}, 1}},
    {"groups 4 (ResNeXt)", {2, 16, 9, 9}, {16, 4, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 4}},
    {"groups 4 stride 2", {2, 16, 10, 9}, {8, 4, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 4}},
    {"depthwise", {2, 8, 7, 7}, {8, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 8}},
    {"1x1", {2, 32, 10, 12}, {24, 32, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 1}},
    {"1x1 grouped", {2, 32, 6, 5}, {16, 8, 1, 1}, {{1, 1}, {0, 0}, {1, 1}, 4}},
    {"1x1 stride 2 (downsample)", {2, 16, 10, 11}, {32, 16, 1, 1}, {{2, 2}, {0, 0}, {1, 1}, 1}},
    {"stem 7x7 stride 2 pad 3", {1, 3, 32, 40}, {8, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1}},
    {"RoI-head batch 3x3", {20, 16, 7, 7}, {16, 16, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
    {"1x1 output", {3, 5, 3, 3}, {4, 5, 3, 3}, {{1, 1}, {0, 0}, {1, 1}, 1}},
};

inline Shape out_shape(const ConvCase& c) {
  Shape y{c.x[0], c.w[0], 0, 0};
  for (int d = 0; d < 2; ++d) {
    const int64_t span = c.p.dilation[d] * (c.w[2 + d] - 1) + 1;
    y[2 + d] = (c.x[2 + d] + 2 * c.p.padding[d] - span) / c.p.stride[d] + 1;
  }
  return y;
}

}  // namespace gndet::test
