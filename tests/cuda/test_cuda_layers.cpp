// CUDA parity of the layer kernels with the CPU kernels, on poisoned outputs: GroupNorm (every
// kernel family, G in {1, 2, 32}, HxW == 1, C == G, N == 0, with and without affine), weight
// standardisation, frozen BatchNorm's channel affine, max pooling, nearest / bilinear resizing
// and the losses, forward and backward, FP32 and FP64. Plus a check, needing only a CUDA build,
// that every kernel slot has a CUDA registration. Convolutions: test_cuda_conv.cpp.
#include <cmath>

#include "tensor/grad_mode.h"
#include "ops/conv.h"
#include "ops/cuda/tuning.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/loss.h"
#include "ops/norm.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/resize.h"
#include "ops/softmax.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::check_equal;
using test::gpu;

namespace {

Tensor poisoned_like(const Shape& s, DType dt, Device dev) { return test::poisoned(s, TensorOptions(dt, dev)); }

double max_abs(const Tensor& t) {
  double m = 0.0;
  for (const double v : t.to_vector<double>()) m = std::max(m, std::abs(v));
  return m;
}

struct GnCase {
  int64_t N, C, S, G;
};

const char* family_name(cuda::GroupNormAlgo a) {
  switch (a) {
    case cuda::GroupNormAlgo::Auto: return "auto";
    case cuda::GroupNormAlgo::Warp: return "warp";
    case cuda::GroupNormAlgo::Fused: return "fused";
    case cuda::GroupNormAlgo::TwoPass: return "two_pass";
  }
  return "?";
}

}  // namespace

// GroupNorm tolerances (FP32): the GPU accumulates the statistics in float (the CPU in double),
// per thread over at most 16 values and then in trees, so mean and rstd carry relative errors of
// a few 1e-7; y (|y| < ~10) agrees to 1e-5. In the backward A and B are float sums of up to M
// terms below ~30: their rounding, scaled by rstd^3 / M, stays below 1e-5 in dx. dgamma / dbeta
// are sums of N * S terms below ~10 (|dy| < 3, |x_hat| < ~2.5): 1e-6 * N * S * 4 absolute covers
// their float rounding in any order. FP64: 1e-10.
TEST_CASE("cuda parity: group_norm forward and backward, every kernel family", "[cuda][norm]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const std::vector<GnCase> cases = {
      {2, 64, 99, 32},     // M = 198: warp family
      {2, 256, 49, 32},    // box head: M = 392
      {2, 6, 35, 3},       // M = 70, M % 4 != 0: scalar loads
      {3, 32, 1, 32},      // HxW == 1 and C == G: groups of one value
      {2, 16, 1, 2},       // HxW == 1: a group of 8 single-value channels
      {2, 8, 25, 8},       // C == G
      {2, 64, 99, 2},      // M = 3168: one tile
      {2, 64, 99, 1},      // G == 1: M = 6336, two tiles, channels across tile edges
      {1, 32, 6144, 32},   // M = 6144: a channel across a tile edge
      {2, 32, 2211, 4},    // M = 17688, not a multiple of 4: scalar tile loads, 5 tiles
      {1, 64, 25600, 32},  // M = 51200: 13 tiles
      {2, 2048, 35, 32},   // S % 4 != 0 but M % 4 == 0: vectors across channel edges
  };
  const std::vector<cuda::GroupNormAlgo> families = {cuda::GroupNormAlgo::Auto, cuda::GroupNormAlgo::Warp,
                                                     cuda::GroupNormAlgo::Fused, cuda::GroupNormAlgo::TwoPass};
  uint64_t seed = 10000;
  for (const DType dt : {kFloat32, kFloat64}) {
    const bool f32 = dt == kFloat32;
    for (const GnCase& c : cases) {
      const int64_t M = c.C / c.G * c.S;
      // x around 2 with a spread of ~3: the mean must be removed before squaring.
      const Tensor x = test::random_nonzero({c.N, c.C, c.S}, seed++, dt) + 2.0;
      const Tensor w = test::random_nonzero({c.C}, seed++, dt), b = test::random_nonzero({c.C}, seed++, dt);
      const Tensor dy = test::random_nonzero({c.N, c.C, c.S}, seed++, dt);
      const Tensor xg = x.to(gpu()), wg = w.to(gpu()), bg = b.to(gpu()), dyg = dy.to(gpu());
      for (const bool affine : {true, false}) {
        const Tensor wc = affine ? w : Tensor(), bc = affine ? b : Tensor();
        const Tensor wd = affine ? wg : Tensor(), bd = affine ? bg : Tensor();
        Tensor yc = poisoned_like({c.N, c.C, c.S}, dt, kCPU), mc = poisoned_like({c.N, c.G}, dt, kCPU),
               rc = poisoned_like({c.N, c.G}, dt, kCPU);
        group_norm_kernel(kCPU, yc, mc, rc, x, wc, bc, c.G, 1e-5);
        Tensor dxc = poisoned_like({c.N, c.C, c.S}, dt, kCPU), dwc = poisoned_like({c.C}, dt, kCPU),
               dbc = poisoned_like({c.C}, dt, kCPU);
        group_norm_backward_kernel(kCPU, dxc, affine ? dwc : Tensor(), affine ? dbc : Tensor(), dy, x, mc, rc, wc, c.G);
        const Tensor mg_ref = mc.to(gpu()), rg_ref = rc.to(gpu());
        for (const cuda::GroupNormAlgo fam : families) {
          INFO(dtype_name(dt) << " (N, C, S) = (" << c.N << ", " << c.C << ", " << c.S << "), G " << c.G << ", M " << M
                              << (affine ? ", affine" : ", no affine") << ", family " << family_name(fam));
          const cuda::GroupNormAlgoGuard use(fam);
          Tensor yg = poisoned_like({c.N, c.C, c.S}, dt, gpu()), mg = poisoned_like({c.N, c.G}, dt, gpu()),
                 rg = poisoned_like({c.N, c.G}, dt, gpu());
          group_norm_kernel(gpu(), yg, mg, rg, xg, wd, bd, c.G, 1e-5);
          check_close(mg, mc, f32 ? 1e-5 : 1e-10, f32 ? 1e-5 : 1e-10, "mean");
          check_close(rg, rc, f32 ? 1e-5 : 1e-10, f32 ? 1e-5 : 1e-10, "rstd");
          check_close(yg, yc, f32 ? 1e-5 : 1e-10, f32 ? 1e-5 : 1e-10, "y");

          // Backward from the CPU's statistics, so that only the backward kernel differs.
          Tensor dxg = poisoned_like({c.N, c.C, c.S}, dt, gpu()), dwg = poisoned_like({c.C}, dt, gpu()),
                 dbg = poisoned_like({c.C}, dt, gpu());
          group_norm_backward_kernel(gpu(), dxg, affine ? dwg : Tensor(), affine ? dbg : Tensor(), dyg, xg, mg_ref,
                                     rg_ref, wd, c.G);
          // dx sums three terms of up to rstd |gamma| |dy| each. Where they cancel (M = 1: x - mean
          // is 0 and dx = c1 dy + c3 is 0 in real numbers, while rstd = 1 / sqrt(eps) = 316) each
          // device is left with the rounding of those terms: 2 ulps of the largest bound it.
          const double dx_atol = (f32 ? 1e-5 : 1e-10) + (f32 ? 0x1p-22 : 0x1p-51) * max_abs(rc) *
                                                            (affine ? max_abs(w) : 1.0) * max_abs(dy);
          check_close(dxg, dxc, dx_atol, f32 ? 1e-4 : 1e-10, "dx");
          if (affine) {
            const double sum_tol = (f32 ? 1e-6 : 1e-13) * static_cast<double>(c.N * c.S) * 4.0;
            check_close(dwg, dwc, sum_tol, f32 ? 1e-5 : 1e-10, "dgamma");
            check_close(dbg, dbc, sum_tol, f32 ? 1e-5 : 1e-10, "dbeta");
          }
          // Only the parameter gradients (a frozen input): dx undefined.
          if (affine) {
            Tensor dw2 = poisoned_like({c.C}, dt, gpu()), db2 = poisoned_like({c.C}, dt, gpu());
            group_norm_backward_kernel(gpu(), Tensor(), dw2, db2, dyg, xg, mg_ref, rg_ref, wd, c.G);
            const double sum_tol = (f32 ? 1e-6 : 1e-13) * static_cast<double>(c.N * c.S) * 4.0;
            check_close(dw2, dwc, sum_tol, f32 ? 1e-5 : 1e-10, "dgamma without dx");
            check_close(db2, dbc, sum_tol, f32 ? 1e-5 : 1e-10, "dbeta without dx");
          }
        }
      }
    }
  }
}

TEST_CASE("cuda: group_norm's output and dx repeat bit for bit", "[cuda][norm]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  for (const cuda::GroupNormAlgo fam : {cuda::GroupNormAlgo::Fused, cuda::GroupNormAlgo::TwoPass}) {
    INFO(family_name(fam));
    const cuda::GroupNormAlgoGuard use(fam);
    const Tensor x = test::random_nonzero({2, 64, 4000}, 10500).to(gpu());
    const Tensor dy = test::random_nonzero({2, 64, 4000}, 10501).to(gpu());
    const Tensor w = test::random_nonzero({64}, 10502).to(gpu());
    Tensor y[2], m[2], r[2], dx[2];
    for (int k = 0; k < 2; ++k) {
      y[k] = empty({2, 64, 4000}, gpu());
      m[k] = empty({2, 32}, gpu());
      r[k] = empty({2, 32}, gpu());
      dx[k] = empty({2, 64, 4000}, gpu());
      group_norm_kernel(gpu(), y[k], m[k], r[k], x, w, Tensor(), 32, 1e-5);
      group_norm_backward_kernel(gpu(), dx[k], Tensor(), Tensor(), dy, x, m[k], r[k], w, 32);
    }
    check_equal(y[1], y[0], "y");
    check_equal(r[1], r[0], "rstd");
    check_equal(dx[1], dx[0], "dx");
  }
}

TEST_CASE("cuda parity: group_norm through autograd, and N == 0", "[cuda][norm][autograd]") {
  GNDET_REQUIRE_CUDA();
  const Tensor x = test::random_nonzero({2, 8, 5, 6}, 10600);
  const Tensor w = test::random_nonzero({8}, 10601), b = test::random_nonzero({8}, 10602);
  const Tensor r = test::random_nonzero({2, 8, 5, 6}, 10603);
  Tensor grads[2][3];
  Tensor out[2];
  int k = 0;
  for (const Device dev : {kCPU, gpu()}) {
    // detach(): x.to(kCPU) is x itself; without it the CPU pass's leaf would make x.to(gpu()) a
    // differentiable copy, whose .grad() stays undefined.
    Tensor xd = x.to(dev).detach().set_requires_grad(), wd = w.to(dev).detach().set_requires_grad(),
           bd = b.to(dev).detach().set_requires_grad();
    out[k] = group_norm(xd, 4, wd, bd);
    sum(out[k] * r.to(dev)).backward();
    grads[k][0] = xd.grad();
    grads[k][1] = wd.grad();
    grads[k][2] = bd.grad();
    ++k;
  }
  check_close(out[1], out[0], 1e-5, 1e-5, "y");  // see the kernel test above for the tolerances
  for (int i = 0; i < 3; ++i) check_close(grads[1][i], grads[0][i], 1e-4, 1e-4, "grad " + std::to_string(i));

  Tensor empty_x = zeros({0, 8, 5, 6}, gpu()).set_requires_grad();
  const Tensor wd = w.to(gpu()).set_requires_grad();
  const Tensor y = group_norm(empty_x, 4, wd, Tensor());
  CHECK(y.shape() == Shape{0, 8, 5, 6});
  sum(y).backward();
  CHECK(wd.grad().cpu().to_vector<float>() == std::vector<float>(8, 0.0f));
}

// WS tolerances: FP32 row statistics in float over R <= 4608 values below 3: relative errors of a
// few 1e-7 in mean and std; w_hat (|w_hat| < ~2) to 1e-5. The backward's sums reach R * 9, scaled
// by 1 / (u^2 (R - 1) s): 1e-5 absolute + 1e-4 relative.
TEST_CASE("cuda parity: weight standardisation forward and backward", "[cuda][norm]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const std::vector<Shape> shapes = {{16, 72}, {8, 4608}, {4, 147}, {6, 9}, {5, 2}, {64, 2304}, {3, 1025}};
  uint64_t seed = 11000;
  for (const DType dt : {kFloat32, kFloat64}) {
    const bool f32 = dt == kFloat32;
    for (const Shape& s : shapes) {
      INFO(dtype_name(dt) << " rows " << shape_str(s));
      const Tensor w = test::random_nonzero(s, seed++, dt) * 0.1 + 0.05;  // weight-like: small, off-centre
      const Tensor g = test::random_nonzero(s, seed++, dt);
      Tensor oc = poisoned_like(s, dt, kCPU), og = poisoned_like(s, dt, gpu());
      weight_standardization_kernel(kCPU, oc, w, 1e-5);
      weight_standardization_kernel(gpu(), og, w.to(gpu()), 1e-5);
      check_close(og, oc, f32 ? 1e-5 : 1e-10, f32 ? 1e-5 : 1e-10, "forward");
      Tensor dc = poisoned_like(s, dt, kCPU), dg = poisoned_like(s, dt, gpu());
      weight_standardization_backward_kernel(kCPU, dc, g, w, 1e-5);
      weight_standardization_backward_kernel(gpu(), dg, g.to(gpu()), w.to(gpu()), 1e-5);
      check_close(dg, dc, f32 ? 1e-5 * 10 : 1e-9, f32 ? 1e-4 : 1e-10, "backward (|dw| up to ~30 / std)");
    }
  }
  // A constant row: std 0, the second term of the gradient is 0 on both devices.
  const Tensor flat = full({2, 9}, 0.5);
  const Tensor g = test::random_nonzero({2, 9}, 11100);
  Tensor dc = poisoned_like({2, 9}, kFloat32, kCPU), dg = poisoned_like({2, 9}, kFloat32, gpu());
  weight_standardization_backward_kernel(kCPU, dc, g, flat, 1e-5);
  weight_standardization_backward_kernel(gpu(), dg, g.to(gpu()), flat.to(gpu()), 1e-5);
  check_close(dg, dc, 1e-2, 1e-5, "constant row (dw = (g - mean g) / 1e-5: up to 6e5)");
}

TEST_CASE("cuda parity: frozen batch norm (channel affine) forward and backward", "[cuda][norm]") {
  GNDET_REQUIRE_CUDA();
  const Tensor x = test::random_nonzero({2, 8, 5, 7}, 11200);
  const Tensor w = test::random_nonzero({8}, 11201), b = test::random_nonzero({8}, 11202);
  const Tensor mean = test::random_nonzero({8}, 11203), var = test::random_nonzero({8}, 11204, kFloat32, 0.5, 2.0, true);
  const Tensor r = test::random_nonzero({2, 8, 5, 7}, 11205);
  Tensor y[2], gx[2];
  int k = 0;
  for (const Device dev : {kCPU, gpu()}) {
    Tensor xd = x.to(dev).detach().set_requires_grad();  // a leaf on each device (see the GroupNorm case)
    y[k] = frozen_batch_norm(xd, w.to(dev), b.to(dev), mean.to(dev), var.to(dev));
    sum(y[k] * r.to(dev)).backward();
    gx[k++] = xd.grad();
  }
  // One multiply-add per element; the GPU may fuse it: a few ulps of |y| < ~30.
  check_close(y[1], y[0], 1e-5, 1e-6, "forward");
  check_close(gx[1], gx[0], 1e-5, 1e-6, "backward");
  // The kernel alone, without shift, on a poisoned output.
  Tensor oc = poisoned_like({2, 8, 35}, kFloat32, kCPU), og = poisoned_like({2, 8, 35}, kFloat32, gpu());
  const Tensor x3 = x.reshape({2, 8, 35});
  channel_affine_kernel(kCPU, oc, x3, w, Tensor());
  channel_affine_kernel(gpu(), og, x3.to(gpu()), w.to(gpu()), Tensor());
  check_close(og, oc, 0.0, 1e-7, "scale only: one rounding, no fusion possible");
}

TEST_CASE("cuda parity: max_pool2d forward (exact, ties and NaN) and backward", "[cuda][pool]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  struct Case {
    Shape x;
    Pair k, s, p;
    bool ceil;
  };
  const std::vector<Case> cases = {
      {{2, 4, 11, 13}, {3, 3}, {2, 2}, {1, 1}, false},  // the ResNet stem
      {{2, 4, 11, 13}, {3, 3}, {2, 2}, {1, 1}, true},
      {{2, 3, 9, 10}, {1, 1}, {2, 2}, {0, 0}, false},  // FPN P6
      {{1, 2, 7, 9}, {2, 2}, {2, 2}, {0, 0}, true},
      {{1, 2, 6, 6}, {2, 3}, {1, 2}, {1, 1}, false},
  };
  uint64_t seed = 12000;
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const Case& c : cases) {
      INFO(dtype_name(dt) << " x " << shape_str(c.x) << " kernel " << c.k[0] << "x" << c.k[1] << " stride " << c.s[0]
                          << " ceil " << c.ceil);
      // Small integers: many ties, which must resolve to the same (first) winner.
      Tensor x = test::random_ints(c.x, seed++, -4, 5).to(dt);
      x.view({-1}).narrow(0, 7, 1).fill_(NAN);  // one NaN: it wins its windows on both devices
      const Tensor ref = max_pool2d(x, c.k, c.s, c.p, c.ceil);
      const Shape ys = ref.shape();
      const Pool2dParams p{c.k, c.s, c.p};
      Tensor yc = poisoned_like(ys, dt, kCPU), ic = test::poisoned(ys, TensorOptions(kInt64));
      Tensor yg = poisoned_like(ys, dt, gpu()), ig = test::poisoned(ys, TensorOptions(kInt64, gpu()));
      max_pool2d_kernel(kCPU, yc, ic, x, p);
      max_pool2d_kernel(gpu(), yg, ig, x.to(gpu()), p);
      check_equal(yg, yc, "values");
      check_equal(ig, ic, "indices");
      const Tensor dy = test::random_nonzero(ys, seed++, dt);
      Tensor dc = poisoned_like(c.x, dt, kCPU), dg = poisoned_like(c.x, dt, gpu());
      max_pool2d_backward_kernel(kCPU, dc, dy, ic);
      max_pool2d_backward_kernel(gpu(), dg, dy.to(gpu()), ig);
      // A pixel that wins overlapping windows sums up to 4 gradients in another order: 2 ulps.
      check_close(dg, dc, dt == kFloat32 ? 2e-6 : 1e-14, dt == kFloat32 ? 1e-6 : 1e-14, "backward");
    }
  }
}

TEST_CASE("cuda parity: upsample_nearest and interpolate_bilinear, forward and backward", "[cuda][resize]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const std::vector<std::pair<Shape, Pair>> cases = {
      {{2, 3, 5, 7}, {10, 14}}, {{2, 3, 5, 7}, {7, 9}}, {{1, 4, 9, 9}, {4, 5}}, {{1, 2, 1, 1}, {3, 2}}, {{1, 2, 6, 4}, {6, 4}}};
  uint64_t seed = 13000;
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const auto& [xs, out] : cases) {
      INFO(dtype_name(dt) << " " << shape_str(xs) << " -> " << out[0] << "x" << out[1]);
      const Shape ys{xs[0], xs[1], out[0], out[1]};
      const Tensor x = test::random_nonzero(xs, seed++, dt), dy = test::random_nonzero(ys, seed++, dt);
      const Tensor xg = x.to(gpu()), dyg = dy.to(gpu());
      // nearest: the same source pixels and, backward, the same additions in the same order.
      Tensor yc = poisoned_like(ys, dt, kCPU), yg = poisoned_like(ys, dt, gpu());
      upsample_nearest_kernel(kCPU, yc, x);
      upsample_nearest_kernel(gpu(), yg, xg);
      check_equal(yg, yc, "nearest forward");
      Tensor dc = poisoned_like(xs, dt, kCPU), dg = poisoned_like(xs, dt, gpu());
      upsample_nearest_backward_kernel(kCPU, dc, dy);
      upsample_nearest_backward_kernel(gpu(), dg, dyg);
      check_equal(dg, dc, "nearest backward");
      for (const bool ac : {false, true}) {
        INFO("bilinear, align_corners " << ac);
        // Weights and sums in double on both devices: only FMA fusion on the GPU differs.
        Tensor bc = poisoned_like(ys, dt, kCPU), bg = poisoned_like(ys, dt, gpu());
        interpolate_bilinear_kernel(kCPU, bc, x, ac);
        interpolate_bilinear_kernel(gpu(), bg, xg, ac);
        check_close(bg, bc, dt == kFloat32 ? 1e-6 : 1e-13, 1e-6, "bilinear forward");
        // atomicAdd order: sums of up to ~16 weighted gradients below 3 in another order.
        Tensor gc = poisoned_like(xs, dt, kCPU), gg = poisoned_like(xs, dt, gpu());
        interpolate_bilinear_backward_kernel(kCPU, gc, dy, ac);
        interpolate_bilinear_backward_kernel(gpu(), gg, dyg, ac);
        check_close(gg, gc, dt == kFloat32 ? 1e-5 : 1e-13, 1e-6, "bilinear backward");
      }
    }
  }
}

// Loss tolerances: cross-entropy's log-sum-exp in float (CPU: double): logits below 8 in
// magnitude give log-sum-exp errors of a few ulps of ~10, so 1e-5; probabilities in the backward
// to 1e-6. BCE and smooth L1 are elementwise with expf / log1pf (1-2 ulps): 1e-6.
TEST_CASE("cuda parity: cross_entropy forward and backward, class weights, ignore_index", "[cuda][loss]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 14000;
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const auto& [N, C] : std::vector<std::pair<int64_t, int64_t>>{{37, 81}, {5, 2000}, {3, 1}, {64, 1024}}) {
      for (const DType it : {kInt64, kInt32}) {
        for (const bool weighted : {false, true}) {
          INFO(dtype_name(dt) << " (" << N << ", " << C << ") targets " << dtype_name(it) << (weighted ? " weighted" : ""));
          const Tensor x = test::random_nonzero({N, C}, seed++, dt, 0.0, 8.0);
          Tensor t = test::random_ints({N}, seed++, 0, C, it);
          t.narrow(0, 0, 1).fill_(-100);  // one ignored sample
          const Tensor w = weighted ? test::random_nonzero({C}, seed++, dt, 0.5, 2.0, true) : Tensor();
          const Tensor g = test::random_nonzero({N}, seed++, dt);
          Tensor lc = poisoned_like({N}, dt, kCPU), sc = poisoned_like({N}, dt, kCPU);
          Tensor lg = poisoned_like({N}, dt, gpu()), sg = poisoned_like({N}, dt, gpu());
          cross_entropy_kernel(kCPU, lc, sc, x, t, w, -100);
          cross_entropy_kernel(gpu(), lg, sg, x.to(gpu()), t.to(gpu()), w.defined() ? w.to(gpu()) : Tensor(), -100);
          check_close(lg, lc, dt == kFloat32 ? 1e-5 : 1e-12, 1e-5, "losses");
          check_equal(sg, sc, "sample weights");
          Tensor dc = poisoned_like({N, C}, dt, kCPU), dg = poisoned_like({N, C}, dt, gpu());
          cross_entropy_backward_kernel(kCPU, dc, g, x, t, w, -100);
          cross_entropy_backward_kernel(gpu(), dg, g.to(gpu()), x.to(gpu()), t.to(gpu()),
                                        w.defined() ? w.to(gpu()) : Tensor(), -100);
          check_close(dg, dc, dt == kFloat32 ? 1e-6 * 6 : 1e-13, 1e-5, "dlogits (|scale| < 6)");
        }
      }
    }
  }
  // A target outside [0, C) is the CPU's error, raised after the kernel.
  const Tensor x = test::random_nonzero({4, 5}, 14500).to(gpu());
  const Tensor bad = from_data<int64_t>({0, 1, 7, 2}).to(gpu());
  Tensor l = empty({4}, gpu()), s = empty({4}, gpu());
  CHECK_THROWS_WITH(cross_entropy_kernel(gpu(), l, s, x, bad, Tensor(), -100),
                    Catch::Contains("target 7 of sample 2 is outside [0, 5)"));
}

TEST_CASE("cuda parity: BCE with logits and smooth L1 / L1, forward and backward", "[cuda][loss]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 15000;
  for (const DType dt : {kFloat32, kFloat64}) {
    const double tol = dt == kFloat32 ? 1e-6 : 1e-13;
    for (const int64_t n : {1, 7, 1000, 100003}) {
      INFO(dtype_name(dt) << " n " << n);
      const Tensor x = test::random_nonzero({n}, seed++, dt, 0.0, 12.0);
      const Tensor t = test::random_nonzero({n}, seed++, dt, 0.0, 1.0, true);
      const Tensor g = test::random_nonzero({n}, seed++, dt);
      const Tensor xg = x.to(gpu()), tg = t.to(gpu()), gg = g.to(gpu());
      Tensor oc = poisoned_like({n}, dt, kCPU), og = poisoned_like({n}, dt, gpu());
      bce_with_logits_kernel(kCPU, oc, x, t);
      bce_with_logits_kernel(gpu(), og, xg, tg);
      check_close(og, oc, tol, tol, "bce");
      Tensor dxc = poisoned_like({n}, dt, kCPU), dtc = poisoned_like({n}, dt, kCPU);
      Tensor dxg = poisoned_like({n}, dt, gpu()), dtg = poisoned_like({n}, dt, gpu());
      bce_with_logits_backward_kernel(kCPU, dxc, dtc, g, x, t);
      bce_with_logits_backward_kernel(gpu(), dxg, dtg, gg, xg, tg);
      check_close(dxg, dxc, 3 * tol, tol, "bce dlogits");
      check_close(dtg, dtc, 0.0, tol, "bce dtarget");
      Tensor dx2 = poisoned_like({n}, dt, gpu());
      bce_with_logits_backward_kernel(gpu(), dx2, Tensor(), gg, xg, tg);
      check_close(dx2, dxc, 3 * tol, tol, "bce dlogits without dtarget");
      for (const double beta : {1.0, 1.0 / 9.0, 0.0}) {
        INFO("smooth L1 beta " << beta);
        Tensor sc = poisoned_like({n}, dt, kCPU), sg = poisoned_like({n}, dt, gpu());
        smooth_l1_kernel(kCPU, sc, x, t, beta);
        smooth_l1_kernel(gpu(), sg, xg, tg, beta);
        check_close(sg, sc, tol, tol, "smooth l1");
        Tensor pc = poisoned_like({n}, dt, kCPU), pg = poisoned_like({n}, dt, gpu());
        smooth_l1_backward_kernel(kCPU, pc, g, x, t, beta);
        smooth_l1_backward_kernel(gpu(), pg, gg, xg, tg, beta);
        check_close(pg, pc, tol, tol, "smooth l1 backward");
      }
    }
  }
}

// Needs a CUDA build only, not a GPU: every kernel slot that has a CPU kernel has a CUDA one.
TEST_CASE("cuda: every op kernel has a CUDA registration", "[cuda][registry]") {
  if (!cuda::is_built()) {
    test::skip("gndet was built without CUDA");
    return;
  }
  // clang-format off
  const std::vector<std::pair<const char*, bool>> kernels = {
      {"conv2d_forward_kernel", conv2d_forward_kernel.has(DeviceType::CUDA)},
      {"conv2d_backward_input_kernel", conv2d_backward_input_kernel.has(DeviceType::CUDA)},
      {"conv2d_backward_weight_kernel", conv2d_backward_weight_kernel.has(DeviceType::CUDA)},
      {"channel_sum_kernel", channel_sum_kernel.has(DeviceType::CUDA)},
      {"group_norm_kernel", group_norm_kernel.has(DeviceType::CUDA)},
      {"group_norm_backward_kernel", group_norm_backward_kernel.has(DeviceType::CUDA)},
      {"weight_standardization_kernel", weight_standardization_kernel.has(DeviceType::CUDA)},
      {"weight_standardization_backward_kernel", weight_standardization_backward_kernel.has(DeviceType::CUDA)},
      {"channel_affine_kernel", channel_affine_kernel.has(DeviceType::CUDA)},
      {"max_pool2d_kernel", max_pool2d_kernel.has(DeviceType::CUDA)},
      {"max_pool2d_backward_kernel", max_pool2d_backward_kernel.has(DeviceType::CUDA)},
      {"upsample_nearest_kernel", upsample_nearest_kernel.has(DeviceType::CUDA)},
      {"upsample_nearest_backward_kernel", upsample_nearest_backward_kernel.has(DeviceType::CUDA)},
      {"interpolate_bilinear_kernel", interpolate_bilinear_kernel.has(DeviceType::CUDA)},
      {"interpolate_bilinear_backward_kernel", interpolate_bilinear_backward_kernel.has(DeviceType::CUDA)},
      {"cross_entropy_kernel", cross_entropy_kernel.has(DeviceType::CUDA)},
      {"cross_entropy_backward_kernel", cross_entropy_backward_kernel.has(DeviceType::CUDA)},
      {"bce_with_logits_kernel", bce_with_logits_kernel.has(DeviceType::CUDA)},
      {"bce_with_logits_backward_kernel", bce_with_logits_backward_kernel.has(DeviceType::CUDA)},
      {"smooth_l1_kernel", smooth_l1_kernel.has(DeviceType::CUDA)},
      {"smooth_l1_backward_kernel", smooth_l1_backward_kernel.has(DeviceType::CUDA)},
      {"bmm_kernel (linear)", bmm_kernel.has(DeviceType::CUDA)},
      {"softmax_rows_kernel", softmax_rows_kernel.has(DeviceType::CUDA)},
  };
  // clang-format on
  for (const auto& [name, has] : kernels) {
    INFO(name);
    CHECK(has);
  }
}
