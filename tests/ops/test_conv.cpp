// conv2d and conv_transpose2d: hand-computed cases and a naive loop reference in double
// for forward and both gradients, over shapes that reach every path of the CPU kernel (batched
// small images, single-image tiles, tiles split inside one large image, 1x1 without im2col,
// groups, dilation, strides, an empty batch). Run it with OMP_NUM_THREADS=1, 2 and 3 to cover
// the serial path, even and uneven splits of the work between threads.
#include <cmath>

#include <omp.h>
#include <vector>

#include "ops/conv.h"
#include "ops/conv_geometry.h"
#include "ops/cpu/conv_grouped.h"
#include "ops/cpu/conv_grouped_channels.h"
#include "ops/cpu/conv_winograd.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VD = std::vector<double>;

namespace {

struct ConvCase {
  int64_t N, C_in, H, W, C_out, kh, kw;
  Pair stride{1, 1}, padding{0, 0}, dilation{1, 1};
  int64_t groups = 1;
};

int64_t out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) { return (in + 2 * p - d * (k - 1) - 1) / s + 1; }

// y = conv(x, w) + b and, for an output gradient r, the gradients dx and dw, by plain loops.
struct NaiveConv {
  VD y, dx, dw;
};
NaiveConv naive_conv(const ConvCase& c, const VD& x, const VD& w, const VD& b, const VD& r) {
  const int64_t Ho = out_size(c.H, c.kh, c.stride[0], c.padding[0], c.dilation[0]);
  const int64_t Wo = out_size(c.W, c.kw, c.stride[1], c.padding[1], c.dilation[1]);
  const int64_t cig = c.C_in / c.groups, cog = c.C_out / c.groups;
  NaiveConv out{VD(c.N * c.C_out * Ho * Wo, 0.0), VD(x.size(), 0.0), VD(w.size(), 0.0)};
  for (int64_t n = 0; n < c.N; ++n) {
    for (int64_t o = 0; o < c.C_out; ++o) {
      const int64_t g = o / cog;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t yi = ((n * c.C_out + o) * Ho + oh) * Wo + ow;
          double acc = b.empty() ? 0.0 : b[o];
          for (int64_t ci = 0; ci < cig; ++ci) {
            for (int64_t i = 0; i < c.kh; ++i) {
              for (int64_t j = 0; j < c.kw; ++j) {
                const int64_t ih = oh * c.stride[0] - c.padding[0] + i * c.dilation[0];
                const int64_t iw = ow * c.stride[1] - c.padding[1] + j * c.dilation[1];
                if (ih < 0 || ih >= c.H || iw < 0 || iw >= c.W) continue;
                const int64_t xi = ((n * c.C_in + g * cig + ci) * c.H + ih) * c.W + iw;
                const int64_t wi = ((o * cig + ci) * c.kh + i) * c.kw + j;
                acc += w[wi] * x[xi];
                out.dx[xi] += w[wi] * r[yi];
                out.dw[wi] += x[xi] * r[yi];
              }
            }
          }
          out.y[yi] = acc;
        }
      }
    }
  }
  return out;
}

}  // namespace

TEST_CASE("conv2d on an arange input, by hand", "[layers]") {
  const Tensor x = arange(0.0, 16.0, 1.0, kFloat32).reshape({1, 1, 4, 4});
  const Tensor w = ones({1, 1, 3, 3});
  // Sums of the four 3x3 windows of [[0..3], [4..7], [8..11], [12..15]], plus the bias 1.
  CHECK(conv2d(x, w, ones({1})).to_vector<float>() == V{46, 55, 82, 91});
  // Padding 1, stride 2: windows centred on (0,0), (0,2), (2,0), (2,2), cut by the border.
  CHECK(conv2d(x, w, Tensor(), {2, 2}, {1, 1}).to_vector<float>() == V{10, 24, 51, 90});
  // Dilation 2 on a 5x5 arange: the 3x3 taps at rows/cols {0, 2, 4}.
  const Tensor x5 = arange(0.0, 25.0, 1.0, kFloat32).reshape({1, 1, 5, 5});
  CHECK(conv2d(x5, w, Tensor(), {1, 1}, {0, 0}, {2, 2}).to_vector<float>() == V{0 + 2 + 4 + 10 + 12 + 14 + 20 + 22 + 24});
  // Two groups: each output channel sees only its own input channel (1x1 weights 2 and 10).
  const Tensor xg = from_data<float>({1, 2, 3, 4}, {1, 2, 1, 2});
  CHECK(conv2d(xg, from_data<float>({2, 10}, {2, 1, 1, 1}), Tensor(), {1, 1}, {0, 0}, {1, 1}, 2).to_vector<float>() ==
        V{2, 4, 30, 40});
}

// Shapes that reach every path of the CPU kernels (see the top of this file).
std::vector<ConvCase> kernel_path_cases() {
  return {
      {2, 3, 5, 4, 4, 3, 3, {1, 1}, {1, 1}},                      // batched small images
      {1, 4, 9, 7, 6, 3, 3, {2, 2}, {2, 1}, {2, 1}, 2},           // stride, dilation, groups
      {2, 64, 64, 64, 4, 3, 3, {1, 1}, {1, 1}},                   // 4096 positions: tiles split an image
      {3, 8, 6, 6, 8, 1, 1},                                       // 1x1 over batched small images
      {1, 8, 20, 20, 6, 1, 1, {1, 1}, {0, 0}, {1, 1}, 2},          // 1x1 direct (no im2col), groups
      {2, 4, 8, 8, 4, 1, 1, {2, 2}},                               // 1x1 stride 2: im2col again
      {5, 6, 7, 7, 12, 3, 3, {1, 1}, {1, 1}, {1, 1}, 3},           // many images, groups 3
      {1, 64, 6, 6, 64, 3, 3, {1, 1}, {1, 1}, {1, 1}, 32},         // ResNeXt-like 32 groups
      {1, 3, 37, 29, 8, 7, 7, {2, 2}, {3, 3}},                    // stem 7x7/2, one image
      {2, 2, 17, 16, 3, 3, 2, {1, 1}, {1, 0}},                    // 17x15 = 255 positions: batched
      {2, 256, 30, 30, 4, 3, 3, {1, 1}, {1, 1}},                  // one image per tile, in place
      {2, 2048, 24, 24, 4, 1, 1},                                  // 1x1 in place over two images
      {3, 16, 16, 32, 8, 1, 1},                                    // 1x1, 512 positions: in place
      {20, 256, 10, 10, 8, 3, 3, {1, 1}, {1, 1}},                 // three multi-image tiles (9, 9, 2 images)
      {2, 64, 24, 24, 64, 3, 3, {1, 1}, {1, 1}, {1, 1}, 32},      // groups >= threads: groups split over threads
      {2, 16, 24, 24, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},       // 2 groups, large enough to run in parallel
      {1, 3, 21, 100, 8, 7, 7, {2, 2}, {3, 3}},                   // stem-like on wide rows: the stride-2 gather
      {2, 16, 10, 70, 8, 1, 1, {2, 2}},                            // 1x1 stride 2 on wide rows
      {2, 8, 20, 40, 6, 2, 2, {2, 2}},                             // kernel = stride: dx placed, not summed
      {6, 8, 14, 14, 8, 2, 2, {2, 2}},                             // the same over batched small images
  };
}

TEST_CASE("conv2d matches a naive loop in forward and both gradients", "[layers]") {
  const std::vector<ConvCase> cases = kernel_path_cases();
  Generator gen(7);
  for (const ConvCase& c : cases) {
    INFO("N " << c.N << " C_in " << c.C_in << " " << c.H << "x" << c.W << " C_out " << c.C_out << " k " << c.kh << "x"
              << c.kw << " groups " << c.groups);
    Tensor x = randn({c.N, c.C_in, c.H, c.W}, gen, kFloat64).set_requires_grad();
    Tensor w = randn({c.C_out, c.C_in / c.groups, c.kh, c.kw}, gen, kFloat64).set_requires_grad();
    Tensor b = randn({c.C_out}, gen, kFloat64).set_requires_grad();
    const Tensor y = conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
    const Tensor r = randn(y.shape(), gen, kFloat64);
    const NaiveConv ref = naive_conv(c, x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(),
                                     r.to_vector<double>());
    // Sums of at most 576 products of N(0, 1) values: double rounding stays below 1e-12.
    CHECK(test::max_abs_diff(y.to_vector<double>(), ref.y) < 1e-10);
    sum(y * r).backward();
    CHECK(test::max_abs_diff(x.grad().to_vector<double>(), ref.dx) < 1e-10);
    CHECK(test::max_abs_diff(w.grad().to_vector<double>(), ref.dw) < 1e-9);  // sums over up to 2 * 4096 positions
    CHECK(test::max_abs_diff(b.grad().to_vector<double>(), sum(r, {0, 2, 3}).to_vector<double>()) < 1e-10);
  }
}

TEST_CASE("conv2d in float32 matches a naive loop in forward and both gradients", "[layers]") {
  // float32 takes its own road (ops/cpu/gemm.h, im2col fused into the packing) where the build has
  // AVX-512: the same shapes as above, against the same double loop.
  Generator gen(9);
  for (const ConvCase& c : kernel_path_cases()) {
    INFO("N " << c.N << " C_in " << c.C_in << " " << c.H << "x" << c.W << " C_out " << c.C_out << " k " << c.kh << "x"
              << c.kw << " groups " << c.groups);
    const Tensor x64 = randn({c.N, c.C_in, c.H, c.W}, gen, kFloat64);
    const Tensor w64 = randn({c.C_out, c.C_in / c.groups, c.kh, c.kw}, gen, kFloat64);
    const Tensor b64 = randn({c.C_out}, gen, kFloat64);
    Tensor x = x64.to(kFloat32).set_requires_grad(), w = w64.to(kFloat32).set_requires_grad();
    const Tensor y = conv2d(x, w, b64.to(kFloat32), c.stride, c.padding, c.dilation, c.groups);
    const Tensor r = randn(y.shape(), gen, kFloat64);
    // The reference sees the float32-rounded inputs, so only the float32 arithmetic differs.
    const NaiveConv ref = naive_conv(c, x.to(kFloat64).to_vector<double>(), w.to(kFloat64).to_vector<double>(),
                                     b64.to(kFloat32).to(kFloat64).to_vector<double>(), r.to(kFloat32).to(kFloat64).to_vector<double>());
    sum(y * r.to(kFloat32)).backward();
    const auto err = [](const Tensor& got, const VD& want) { return test::max_abs_diff(got.to(kFloat64).to_vector<double>(), want); };
    const double ey = err(y, ref.y), edx = err(x.grad(), ref.dx), edw = err(w.grad(), ref.dw);
    const int64_t Ho = y.size(2), Wo = y.size(3);
    UNSCOPED_INFO("errors y " << ey << " dx " << edx << " dw " << edw);
    // Each output is a sum of `terms` products of N(0, 1) values; float32 sums of n such terms
    // err by at most ~n 2^-24 times the partial sums' size (~sqrt(n)): 8 n^1.5 2^-24. The observed
    // errors (printed on failure) are 100-600x below it; a wrong or missing product (~1) is not.
    const auto bound = [](int64_t terms) { return 8.0 * std::pow(static_cast<double>(terms), 1.5) * std::ldexp(1.0, -24) + 1e-6; };
    CHECK(ey <= bound(c.C_in / c.groups * c.kh * c.kw));
    CHECK(edx <= bound(c.C_out / c.groups * c.kh * c.kw));
    CHECK(edw <= bound(c.N * Ho * Wo));
  }
}

TEST_CASE("conv2d in float32 agrees with the double reference", "[layers]") {
  const ConvCase c{2, 16, 12, 12, 8, 3, 3, {1, 1}, {1, 1}};
  Generator gen(8);
  const Tensor x = randn({c.N, c.C_in, c.H, c.W}, gen, kFloat64), w = randn({8, 16, 3, 3}, gen, kFloat64);
  const Tensor y = conv2d(x.to(kFloat32), w.to(kFloat32), Tensor(), c.stride, c.padding);
  const NaiveConv ref = naive_conv(c, x.to_vector<double>(), w.to_vector<double>(), {}, VD(y.numel(), 0.0));
  // 144-term sums of N(0, 1) products (|y| ~ 12): float32 rounding ~1e-5, well under 1e-3.
  CHECK(test::max_abs_diff(y.to_vector<double>(), ref.y) < 1e-3);
}

TEST_CASE("conv2d computes only the gradients that are needed, and handles an empty batch", "[layers]") {
  Tensor w = ones({2, 1, 3, 3}, kFloat64).set_requires_grad();
  const Tensor x = ones({1, 1, 4, 4}, kFloat64);  // the image: no gradient wanted
  sum(conv2d(x, w, Tensor(), {1, 1}, {1, 1})).backward();
  // Each tap sees the 4x4 ones image shifted by the padding: corners 9, edges 12, centre 16.
  CHECK(w.grad().to_vector<double>() == VD{9, 12, 9, 12, 16, 12, 9, 12, 9, 9, 12, 9, 12, 16, 12, 9, 12, 9});
  CHECK_FALSE(x.requires_grad());

  Tensor xe = zeros({0, 3, 5, 5}, kFloat64).set_requires_grad();
  Tensor we = ones({4, 3, 3, 3}, kFloat64).set_requires_grad();
  const Tensor ye = conv2d(xe, we, Tensor(), {2, 2}, {1, 1});
  CHECK(ye.shape() == Shape{0, 4, 3, 3});
  sum(ye).backward();
  CHECK(xe.grad().shape() == Shape{0, 3, 5, 5});
  CHECK(sum(abs(we.grad())).item<double>() == 0.0);
}

TEST_CASE("conv_transpose2d: kernel 2 stride 2 by hand, and the adjoint of conv2d", "[layers]") {
  // Each input pixel spreads over its own 2x2 block of the output.
  const Tensor x = from_data<float>({1, 2, 3, 4}, {1, 1, 2, 2});
  CHECK(conv_transpose2d(x, ones({1, 1, 2, 2}), from_data<float>({0.5}), {2, 2}).to_vector<float>() ==
        V{1.5, 1.5, 2.5, 2.5, 1.5, 1.5, 2.5, 2.5, 3.5, 3.5, 4.5, 4.5, 3.5, 3.5, 4.5, 4.5});

  // <conv_transpose(u, w), v> == <u, conv(v, w)> for every geometry, including output_padding.
  struct Geo {
    Pair stride, padding, output_padding, dilation;
    int64_t groups;
  };
  const Geo geos[] = {{{2, 2}, {0, 0}, {0, 0}, {1, 1}, 1},
                      {{2, 2}, {1, 1}, {1, 1}, {1, 1}, 2},
                      {{3, 1}, {1, 0}, {2, 0}, {1, 2}, 1},
                      {{1, 1}, {0, 0}, {0, 1}, {1, 2}, 1}};  // output_padding < dilation
  Generator gen(9);
  for (const Geo& g : geos) {
    const Tensor u = randn({2, 4, 5, 4}, gen, kFloat64);
    const Tensor w = randn({4, 6 / g.groups, 3, 2}, gen, kFloat64);
    const Tensor y = conv_transpose2d(u, w, Tensor(), g.stride, g.padding, g.output_padding, g.dilation, g.groups);
    for (int d = 0; d < 2; ++d) {
      const int64_t k = d == 0 ? 3 : 2;
      CHECK(y.size(2 + d) == (u.size(2 + d) - 1) * g.stride[d] - 2 * g.padding[d] + g.dilation[d] * (k - 1) +
                                 g.output_padding[d] + 1);
    }
    const Tensor v = randn(y.shape(), gen, kFloat64);
    const Tensor cv = conv2d(v, w, Tensor(), g.stride, g.padding, g.dilation, g.groups);
    // With output_padding >= stride, conv2d(v) has positions beyond u's; they pair with nothing.
    const Tensor cv_cut = cv.narrow(2, 0, u.size(2)).narrow(3, 0, u.size(3));
    // Two sums of ~500 double products of N(0, 1) values: agreement to ~1e-13 relative.
    CHECK(sum(y * v).item<double>() == Approx(sum(u * cv_cut).item<double>()).epsilon(1e-11));
  }
}

// The input gradient writes every dx element exactly once, which dx poisoned with NaN first shows,
// against the double loop. Where the kernel fits in its stride with no padding, dx is placed:
// values, or zeros between them. Elsewhere col2im adds into rows that each tile clears as it
// first reaches them. Geometries: the 1 x 1 / 2 downsample on odd sizes (the last output row and
// column own what lies beyond them), a tile split inside an image (2048 input channels: 1024-column
// tiles over 35 x 36 outputs), batched small images, kernels narrower than the stride each way
// (zero rows and columns between the values) and a trailing column no output covers (2 x 2 / 3
// over 16 columns: the 5 outputs reach column 14), 1 x 1 / 1 over batched images (a copy), the mask
// head's 2 x 2 / 2; then 3 x 3 / 2 with tiles split inside an image (512 channels: 455-column
// tiles over 35 x 36 outputs, rows shared by neighbouring tiles), a 3 x 3 / 2 whose last rows and
// columns no output reaches, dilation 2, and the stem's 7 x 7 / 2 over batched small images.
TEST_CASE("conv2d's input gradient writes every dx element once, dx poisoned first", "[layers]") {
  const ConvCase cases[] = {
      {1, 16, 9, 13, 8, 1, 1, {2, 2}},
      {1, 2048, 69, 71, 8, 1, 1, {2, 2}},
      {5, 8, 7, 7, 16, 1, 1, {2, 2}},
      {2, 8, 11, 16, 6, 2, 2, {3, 3}},
      {3, 4, 10, 9, 6, 1, 2, {2, 3}},
      {4, 8, 6, 6, 8, 1, 1},
      {2, 8, 20, 40, 6, 2, 2, {2, 2}},
      {6, 8, 14, 15, 8, 2, 2, {2, 2}},
      {1, 512, 70, 72, 4, 3, 3, {2, 2}, {1, 1}},
      {2, 8, 10, 12, 4, 3, 3, {2, 2}, {0, 0}},
      {1, 16, 40, 40, 8, 3, 3, {1, 1}, {2, 2}, {2, 2}},
      {3, 3, 21, 19, 8, 7, 7, {2, 2}, {3, 3}},
  };
  Generator gen(17);
  for (const ConvCase& c : cases) {
    CAPTURE(c.N, c.C_in, c.H, c.W, c.C_out, c.kh, c.kw, c.stride[0], c.stride[1]);
    const int64_t Ho = out_size(c.H, c.kh, c.stride[0], c.padding[0], c.dilation[0]);
    const int64_t Wo = out_size(c.W, c.kw, c.stride[1], c.padding[1], c.dilation[1]);
    const Tensor w = randn({c.C_out, c.C_in, c.kh, c.kw}, gen, kFloat64), r = randn({c.N, c.C_out, Ho, Wo}, gen, kFloat64);
    const NaiveConv ref = naive_conv(c, VD(c.N * c.C_in * c.H * c.W, 0.0), w.to_vector<double>(), {}, r.to_vector<double>());
    Tensor dx = full({c.N, c.C_in, c.H, c.W}, std::nan(""));
    conv2d_backward_input_kernel(kCPU, dx, r.to(kFloat32), w.to(kFloat32), Conv2dParams{c.stride, c.padding, c.dilation});
    // Each value is a sum of at most C_out * kh * kw (here <= 392) float32 products of N(0, 1)
    // values: rounding ~1e-5; a missing, doubled or misplaced term is ~1, a NaN fails any bound.
    CHECK(test::max_abs_diff(dx.to_vector<double>(), ref.dx) < 1e-4);
  }
}

TEST_CASE("conv errors name the op, the shapes and what was expected", "[layers][errors]") {
  CHECK_THROWS_WITH(conv2d(zeros({1, 64, 8, 8}), zeros({16, 32, 3, 3}), Tensor()),
                    Catch::Contains("conv2d: input channels 64 != weight's 32 * groups 1"));
  CHECK_THROWS_WITH(conv2d(zeros({1, 4, 2, 2}), zeros({4, 4, 3, 3}), Tensor()),
                    Catch::Contains("conv2d") && Catch::Contains("(1, 4, 2, 2)") && Catch::Contains("smaller than the kernel"));
  CHECK_THROWS_WITH(conv2d(zeros({1, 4, 5, 5}), zeros({4, 4, 3, 3}), zeros({3})),
                    Catch::Contains("conv2d: expected bias (4), got (3)"));
  CHECK_THROWS_WITH(conv2d(zeros({4, 5, 5}), zeros({4, 4, 3, 3}), Tensor()),
                    Catch::Contains("conv2d: expected input (N, C_in, H, W), got (4, 5, 5)"));
  CHECK_THROWS_WITH(conv2d(zeros({1, 4, 5, 5}), zeros({4, 4, 3, 3}, kFloat64), Tensor()),
                    Catch::Contains("conv2d: weight is float64"));
  CHECK_THROWS_WITH(conv_transpose2d(zeros({1, 4, 5, 5}), zeros({8, 2, 2, 2}), Tensor()),
                    Catch::Contains("conv_transpose2d: input channels 4 != weight's 8"));
  CHECK_THROWS_WITH(conv_transpose2d(zeros({1, 4, 5, 5}), zeros({4, 2, 2, 2}), Tensor(), {2, 2}, {0, 0}, {2, 2}),
                    Catch::Contains("output_padding (2, 2) must be smaller than the stride (2, 2)"));
}

// Winograd F(4x4, 3x3) (ops/cpu/conv_winograd.h) computes float32 3x3 / stride-1 convolutions
// with >= 16 channels each way and >= 64 output tiles. Its transforms round differently from
// direct convolution, so it is checked against the double-precision naive loop, kernel by kernel,
// with outputs poisoned first: sizes that are not multiples of 4 (partial edge tiles), paddings 0, 1
// and 2, several images, a bias, a chunk of tiles that ends inside a group of 16 lanes, and both
// chunk sizes (few channels: 32 tiles; more: 256).
TEST_CASE("conv2d by Winograd F(4x4, 3x3) agrees with the double reference", "[layers]") {
  if (!winograd::enabled()) return test::skip("GNDET_WINOGRAD=0 turns Winograd off");
  const ConvCase cases[] = {
      {2, 16, 29, 30, 24, 3, 3, {1, 1}, {1, 1}},   // 8 x 8 tiles per image, the last row and column partial
      {3, 20, 17, 23, 16, 3, 3, {1, 1}, {0, 0}},   // valid convolution: 15 x 21 outputs
      {1, 32, 30, 33, 17, 3, 3, {1, 1}, {2, 2}},   // padding 2 grows the map: input gradient pads 0
      {70, 16, 7, 7, 16, 3, 3, {1, 1}, {1, 1}},    // RoI-head-like: many 7x7 maps, 4 tiles each
      // More than 64 channels in all: chunks of up to 256 tiles, not 32 (605 tiles: three of 208,
      // 208 and 189, the last ending inside a lane group; the weight gradient sums them in order).
      {5, 40, 42, 42, 36, 3, 3, {1, 1}, {1, 1}},
  };
  for (const ConvCase& c : cases) {
    CAPTURE(c.N, c.C_in, c.H, c.W, c.C_out, c.padding[0]);
    Generator gen(31);
    const Tensor x = randn({c.N, c.C_in, c.H, c.W}, gen, kFloat64);
    const Tensor w = mul(randn({c.C_out, c.C_in, 3, 3}, gen, kFloat64), 1.0 / std::sqrt(9.0 * c.C_in));
    const Tensor b = randn({c.C_out}, gen, kFloat64);
    const Conv2dParams p{c.stride, c.padding};
    const int64_t Ho = c.H + 2 * c.padding[0] - 2, Wo = c.W + 2 * c.padding[1] - 2;
    const Tensor r = randn({c.N, c.C_out, Ho, Wo}, gen, kFloat64);
    const NaiveConv ref = naive_conv(c, x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(),
                                     r.to_vector<double>());
    Tensor y = full({c.N, c.C_out, Ho, Wo}, std::nan(""));
    Tensor dx = full(x.shape(), std::nan(""));
    REQUIRE(winograd::applies(conv_geometry(x, y, w, p)));
    conv2d_forward_kernel(kCPU, y, x.to(kFloat32), w.to(kFloat32), b.to(kFloat32), p);
    conv2d_backward_input_kernel(kCPU, dx, r.to(kFloat32), w.to(kFloat32), p);
    // The weight gradient by Winograd directly: through conv2d it needs more tiles than these cases have.
    const Tensor x32 = x.to(kFloat32), r32 = r.to(kFloat32);
    const ConvGeometry g = conv_geometry(x, y, w, p);
    Tensor dw = full(w.shape(), std::nan(""));
    winograd::conv2d_backward_weight(g, r32.data<float>(), x32.data<float>(), dw.data<float>());
    // Outputs are sums of 9 * C_in unit-variance products (|y| up to ~5). Direct float32 rounding
    // is ~1e-6 here; the transforms' entries (up to 8 in A^T, 5 in B^T) amplify it: measured up to
    // 1.8e-5 while this test was written. 1e-4 leaves room and still fails on any wrong tap or tile.
    CHECK(test::max_abs_diff(y.to_vector<double>(), ref.y) < 1e-4);
    CHECK(test::max_abs_diff(dx.to_vector<double>(), ref.dx) < 1e-4);
    // dw sums N * Ho * Wo products (up to 4,600 here; its largest values 100-200): measured 2.2e-6 to
    // 2.6e-6 of the largest, bounded at 1e-5 of it.
    const double dw_scale = test::max_abs_diff(VD(ref.dw.size(), 0.0), ref.dw);
    CHECK(test::max_abs_diff(dw.to_vector<double>(), ref.dw) < 1e-5 * dw_scale);
    // Each of the 36 sums adds the chunks in order, whichever thread owns it: the same call gives
    // the same bits (training is deterministic run after run), and so does one thread.
    Tensor dw_again = full(w.shape(), std::nan(""));
    winograd::conv2d_backward_weight(g, r32.data<float>(), x32.data<float>(), dw_again.data<float>());
    CHECK(dw_again.to_vector<float>() == dw.to_vector<float>());
    // The forward and input gradient too: every product is one thread's whatever the count.
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    Tensor dw_one = full(w.shape(), std::nan(""));
    winograd::conv2d_backward_weight(g, r32.data<float>(), x32.data<float>(), dw_one.data<float>());
    Tensor y_one = full(y.shape(), std::nan("")), dx_one = full(dx.shape(), std::nan(""));
    conv2d_forward_kernel(kCPU, y_one, x32, w.to(kFloat32), b.to(kFloat32), p);
    conv2d_backward_input_kernel(kCPU, dx_one, r32, w.to(kFloat32), p);
    omp_set_num_threads(threads);
    CHECK(dw_one.to_vector<float>() == dw.to_vector<float>());
    CHECK(y_one.to_vector<float>() == y.to_vector<float>());
    CHECK(dx_one.to_vector<float>() == dx.to_vector<float>());
  }
}

TEST_CASE("conv2d keeps direct convolution where Winograd does not pay or does not apply", "[layers]") {
  if (!winograd::enabled()) return test::skip("GNDET_WINOGRAD=0 turns Winograd off");
  const auto geometry = [](int64_t N, int64_t C, int64_t H, int64_t k, int64_t stride, int64_t groups) {
    const int64_t Ho = (H + 2 - k) / stride + 1;
    return ConvGeometry{N, C, H, H, C, Ho, Ho, k, k, stride, stride, 1, 1, 1, 1, groups};
  };
  CHECK(winograd::applies(geometry(1, 256, 50, 3, 1, 1)));
  CHECK_FALSE(winograd::applies(geometry(1, 256, 50, 3, 2, 1)));   // strided
  CHECK_FALSE(winograd::applies(geometry(1, 256, 50, 3, 1, 32)));  // grouped (ResNeXt)
  CHECK_FALSE(winograd::applies(geometry(1, 256, 50, 1, 1, 1)));   // 1x1
  CHECK_FALSE(winograd::applies(geometry(1, 8, 50, 3, 1, 1)));     // too few channels
  CHECK_FALSE(winograd::applies(geometry(2, 256, 14, 3, 1, 1)));   // 32 tiles: slower than direct
  // the weight gradient needs 256 tiles: layer4's 25 x 42 (77 tiles) stays direct, FPN's P4 does not
  CHECK(winograd::applies(geometry(1, 512, 40, 3, 1, 1)));
  CHECK_FALSE(winograd::applies_to_weight_gradient(geometry(1, 512, 40, 3, 1, 1)));  // 100 tiles
  CHECK(winograd::applies_to_weight_gradient(geometry(1, 256, 84, 3, 1, 1)));        // 441 tiles

}

// Grouped 3x3 convolutions with 4-64 channels per group (ResNeXt's) take the direct kernels of
// ops/cpu/conv_grouped.h in float32 (the forward and input gradient through the conv2d kernels,
// the weight gradient's kernel called directly). Against the double loop with outputs poisoned
// first, over what their blocking and bands must get right: widths that end inside a 16-lane
// vector and runs of 1-8 vectors (narrow rows: several rows per register block), strides 1 and 2
// (each way alone too), paddings 0-2, odd and even widths under stride 2 (its input gradient
// interleaves two column phases), bands of rows that split the map (many channels, or long rows),
// 4 to 64 channels per group each way, a bias, several images.
TEST_CASE("grouped 3x3 conv2d by the direct kernels agrees with the double reference", "[layers]") {
  const ConvGeometry resnext{1, 128, 50, 50, 128, 50, 50, 3, 3, 1, 1, 1, 1, 1, 1, 32};
  if (!grouped::applies(resnext)) {
    return test::skip("built without AVX-512, or GNDET_GROUPED_DIRECT=0: grouped convs take im2col + GEMM");
  }
  const ConvCase cases[] = {
      {2, 16, 13, 37, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 4},    // 4 per group, 37 = 2 vectors + 5
      {1, 64, 21, 100, 32, 3, 3, {2, 2}, {1, 1}, {1, 1}, 8},   // stride 2, even width: 8 -> 4 per group
      {3, 32, 9, 7, 64, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},      // stride 2, odd width, 16 -> 32 per group
      {1, 128, 30, 113, 128, 3, 3, {1, 1}, {2, 2}, {1, 1}, 2}, // 64 per group: bands of 4 rows; 115 = 8 vectors
      {2, 24, 11, 40, 24, 3, 3, {1, 1}, {0, 0}, {1, 1}, 3},    // valid convolution, 8 per group
      {1, 8, 64, 300, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},     // long rows: two bands of 32 rows
      {1, 16, 18, 35, 16, 3, 3, {2, 1}, {1, 0}, {1, 1}, 2},    // stride 2 down, 1 across
      {2, 16, 17, 34, 16, 3, 3, {1, 2}, {0, 2}, {1, 1}, 4},    // stride 1 down, 2 across, padding 2
      {1, 16, 9, 33, 16, 3, 3, {2, 2}, {0, 0}, {1, 1}, 4},     // stride 2, valid: the band's rows from column 0
      {2, 16, 20, 12, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 4},    // one vector per row: 6 rows per block, 2 left
      {1, 32, 16, 30, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, 4},    // two vectors per row: 3 rows per block, 1 left
      {1, 128, 24, 84, 128, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},  // flat sweeps over bands of 8 (12) rows of 86
      // Read straight from the tensors (stride 1, pw = 1, rows not swept flat): one row of 3
      // vectors (2 rows per block elsewhere), padding 2 down (rows that reach 1-3 kernel rows),
      // one vector exactly.
      {1, 16, 1, 47, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 4},
      {2, 32, 5, 46, 32, 3, 3, {1, 1}, {2, 1}, {1, 1}, 4},
      {1, 8, 7, 16, 8, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},
      // Stride 2 read straight from x (pw = 1, 8k output channels per group): blocks of 3 vectors,
      // the row's first and last (layer4's 42 columns: both in one), 3 + 2 and 3 + 1 vectors,
      // odd widths, padding 0 and 2 down, one vector exactly, bands that split the map.
      {1, 64, 9, 84, 64, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      {1, 16, 8, 139, 16, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      {2, 32, 7, 120, 16, 3, 3, {2, 2}, {2, 1}, {1, 1}, 2},
      {1, 32, 6, 185, 32, 3, 3, {2, 2}, {0, 1}, {1, 1}, 2},
      {1, 16, 5, 32, 16, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      {1, 32, 30, 168, 32, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      // Both gradients at stride 2 straight from the tensors as well (the input gradient's two
      // column phases in one block, the weight gradient's bands of packed dy rows): the cases
      // above, and rows of one vector (first and last at once) in two bands of rows.
      {1, 16, 100, 30, 16, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      // The input gradient's last 1-4 dy columns of 4 dx channels in one vector (Tail::packed):
      // 17 columns (one vector and 1), 50 from an odd width (3 and 2, the last block only the
      // packed columns), 36 (2 and 4), 4 (the packed columns alone); layer3's 84 is above.
      {1, 16, 6, 34, 16, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      {2, 32, 5, 99, 32, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      {1, 16, 7, 71, 16, 3, 3, {2, 2}, {2, 1}, {1, 1}, 2},
      {1, 16, 4, 8, 16, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      // Along the channels (16k channels per group, pw = 1; conv_grouped_channels.h). The cases
      // above: 64 -> 64 per group at stride 1 (weight gradient bands of one row), 32 -> 32 and
      // 16 -> 16 at stride 2 (rows of 24-position blocks; 93 columns: 24 x 3 + 12 + 6 and a last
      // block of 6 over the row's end), padding 0 down, odd widths. Here: 16 at stride 1 over two
      // images (blocks of 12 and 6, the first without kernel column 2 of dy column -1); 16 -> 32
      // at stride 2 from padding 2 down, 45 columns (the input gradient's last block starts at an
      // odd column); rows of one position (weight gradient) with and without kernel column 2.
      {2, 32, 11, 20, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},
      {1, 32, 5, 45, 64, 3, 3, {2, 2}, {2, 1}, {1, 1}, 2},
      {1, 64, 6, 1, 64, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      {1, 32, 7, 2, 32, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      // Two vectors of output channels per forward block (32k per group, layer4): 32 -> 64 per
      // group at stride 1 (two such blocks per row; 28 columns: 12 + 12 and a last 6 over the
      // row's end), 32 -> 32 at stride 2 over two images (27 columns); 64 -> 32 above at stride 2.
      {1, 64, 7, 28, 128, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},
      {2, 64, 9, 53, 64, 3, 3, {2, 2}, {1, 1}, {1, 1}, 2},
      // Pairs of positions (8 channels per group, stride 1 across): a row of 24 + 6 over two
      // images and 4 groups; 13 columns (12 and a last block of 6 from an odd column; the weight
      // gradient's last pair half outside); stride 2 down with 24 + 24 and a last block of 6; rows
      // of 1 and 2 positions (the weight gradient's only pair at both ends). The forward and the
      // input gradient take two rows at a time (an item's last row alone where its count is odd):
      // padding 2 and 0 down, so that a pair of rows reads 2-4 source rows.
      {2, 32, 9, 30, 32, 3, 3, {1, 1}, {1, 1}, {1, 1}, 4},
      {1, 16, 7, 30, 16, 3, 3, {1, 1}, {2, 1}, {1, 1}, 2},
      {1, 16, 8, 26, 16, 3, 3, {1, 1}, {0, 1}, {1, 1}, 2},
      {1, 16, 6, 13, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},
      {1, 24, 7, 50, 24, 3, 3, {2, 1}, {1, 1}, {1, 1}, 3},
      {1, 16, 5, 1, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},
      {2, 16, 6, 2, 16, 3, 3, {1, 1}, {1, 1}, {1, 1}, 2},
  };
  const auto bound = [](int64_t terms) { return 8.0 * std::pow(static_cast<double>(terms), 1.5) * std::ldexp(1.0, -24) + 1e-6; };
  Generator gen(41);
  for (const ConvCase& c : cases) {
    CAPTURE(c.N, c.C_in, c.H, c.W, c.C_out, c.stride[0], c.stride[1], c.padding[0], c.padding[1], c.groups);
    const Tensor x = randn({c.N, c.C_in, c.H, c.W}, gen).to(kFloat64);  // float32 values, held in double
    const Tensor w = randn({c.C_out, c.C_in / c.groups, 3, 3}, gen).to(kFloat64);
    const Tensor b = randn({c.C_out}, gen).to(kFloat64);
    const Conv2dParams p{c.stride, c.padding, {1, 1}, c.groups};
    const int64_t Ho = out_size(c.H, 3, c.stride[0], c.padding[0], 1), Wo = out_size(c.W, 3, c.stride[1], c.padding[1], 1);
    const Tensor r = randn({c.N, c.C_out, Ho, Wo}, gen).to(kFloat64);
    const NaiveConv ref = naive_conv(c, x.to_vector<double>(), w.to_vector<double>(), b.to_vector<double>(),
                                     r.to_vector<double>());
    const Tensor x32 = x.to(kFloat32), w32 = w.to(kFloat32), b32 = b.to(kFloat32), r32 = r.to(kFloat32);
    const ConvGeometry g = conv_geometry(x, r, w, p);
    auto run = [&] {
      Tensor y = full({c.N, c.C_out, Ho, Wo}, std::nan("")), dx = full(x.shape(), std::nan("")),
             dw = full(w.shape(), std::nan(""));
      conv2d_forward_kernel(kCPU, y, x32, w32, b32, p);
      conv2d_backward_input_kernel(kCPU, dx, r32, w32, p);
      // The weight gradient's kernel directly: conv2d takes it up to 32 input channels per group.
      grouped::conv2d_backward_weight(g, r32.data<float>(), x32.data<float>(), dw.data<float>());
      return std::vector<Tensor>{y, dx, dw};
    };
    REQUIRE(grouped::applies(g));
    const std::vector<Tensor> got = run();
    const double ey = test::max_abs_diff(got[0].to_vector<double>(), ref.y);
    const double edx = test::max_abs_diff(got[1].to_vector<double>(), ref.dx);
    const double edw = test::max_abs_diff(got[2].to_vector<double>(), ref.dw);
    UNSCOPED_INFO("errors y " << ey << " dx " << edx << " dw " << edw);
    // The float32 rounding bound of the test above (a wrong or missing product is ~1, far above it).
    CHECK(ey <= bound(c.C_in / c.groups * 9));
    CHECK(edx <= bound(c.C_out / c.groups * 9));
    CHECK(edw <= bound(c.N * Ho * Wo));
    // Every output element and every group's weight gradient is one thread's sum in a fixed order.
    const int threads = omp_get_max_threads();
    omp_set_num_threads(1);
    const std::vector<Tensor> one = run();
    omp_set_num_threads(threads);
    for (int i = 0; i < 3; ++i) CHECK(one[i].to_vector<float>() == got[i].to_vector<float>());
  }
}

TEST_CASE("grouped convolutions take the direct kernels only where they are built to", "[layers]") {
  const auto geometry = [](int64_t C, int64_t k, int64_t stride, int64_t groups, int64_t dilation = 1) {
    const int64_t H = 40, Ho = (H + 2 - dilation * (k - 1) - 1) / stride + 1;
    return ConvGeometry{1, C, H, H, C, Ho, Ho, k, k, stride, stride, 1, 1, dilation, dilation, groups};
  };
  if (!grouped::applies(geometry(128, 3, 1, 32))) return test::skip("built without AVX-512, or GNDET_GROUPED_DIRECT=0");
  CHECK(grouped::applies(geometry(256, 3, 2, 32)));        // ResNeXt 32x4d layer2's first block
  CHECK(grouped::applies(geometry(2048, 3, 1, 32)));       // ResNeXt 32x8d layer4: 64 per group
  CHECK_FALSE(grouped::applies(geometry(4096, 3, 1, 32))); // 128 per group: a GEMM of its own pays
  CHECK_FALSE(grouped::applies(geometry(256, 3, 1, 1)));   // not grouped
  CHECK_FALSE(grouped::applies(geometry(64, 3, 1, 32)));   // 2 per group
  CHECK_FALSE(grouped::applies(geometry(128, 3, 3, 32)));  // stride 3
  CHECK_FALSE(grouped::applies(geometry(128, 1, 1, 32)));  // 1x1
  CHECK_FALSE(grouped::applies(geometry(128, 3, 1, 32, 2)));  // dilated
  // The weight gradient up to 32 input channels per group (ResNeXt 32x4d's layers 1-4).
  CHECK(grouped::applies_to_weight_gradient(geometry(1024, 3, 1, 32)));
  CHECK_FALSE(grouped::applies_to_weight_gradient(geometry(2048, 3, 1, 32)));
  // Along the channels from 16 per group (layers 3-4), where rows are 12 positions or wider; the
  // input gradient at stride 2 from 32 dy channels per group (layer4) only.
  CHECK(grouped::channels::applies(geometry(512, 3, 2, 32)));
  CHECK(grouped::channels::applies_to_weight_gradient(geometry(512, 3, 1, 32)));
  CHECK(grouped::channels::applies_to_input_gradient(geometry(1024, 3, 2, 32)));
  CHECK(grouped::channels::applies_to_input_gradient(geometry(512, 3, 1, 32)));
  CHECK_FALSE(grouped::channels::applies_to_input_gradient(geometry(512, 3, 2, 32)));
  // 8 per group (layer2) as pairs of positions, at stride 1 only (not its strided first block).
  CHECK(grouped::channels::applies(geometry(256, 3, 1, 32)));
  CHECK(grouped::channels::applies_to_input_gradient(geometry(256, 3, 1, 32)));
  CHECK_FALSE(grouped::channels::applies(geometry(256, 3, 2, 32)));
  CHECK_FALSE(grouped::channels::applies_to_input_gradient(geometry(256, 3, 2, 32)));
  CHECK(grouped::channels::applies_to_weight_gradient(geometry(256, 3, 1, 32)));
  CHECK_FALSE(grouped::channels::applies_to_weight_gradient(geometry(256, 3, 2, 32)));
  const ConvGeometry narrow{1, 512, 20, 20, 512, 10, 10, 3, 3, 2, 2, 1, 1, 1, 1, 32};  // 10 output columns
  CHECK_FALSE(grouped::channels::applies(narrow));
}
