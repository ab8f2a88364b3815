// RoIAlign on hand-computed cases (a 5x5 arange), its gradient, many channels against the
// per-sample formula, and its errors.

#include <cmath>
#include <vector>

#include <omp.h>

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/roi_align.h"
#include "ops/roi_align_math.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;

namespace {
// The 5x5 map v(y, x) = 5y + x. Bilinear interpolation of a linear function is exact, so every
// expected value below is 5y + x at the sample positions derived by hand in each comment.
Tensor arange5x5() { return arange(0.0, 25.0, 1.0, kFloat32).reshape({1, 1, 5, 5}); }
Tensor one_roi(std::vector<float> box) {
  box.insert(box.begin(), 0.0f);
  return from_data<float>(box, {1, 5});
}
}  // namespace

TEST_CASE("RoIAlign on a 5x5 arange, aligned (mmdetection)", "[detection][roi_align]") {
  // Box [1, 1, 3, 3] shifted by -0.5 spans [0.5, 2.5]: bins of 0.5, one sample per bin (ceil(2/4)),
  // at 0.75, 1.25, 1.75, 2.25 along each axis.
  const Tensor out = roi_align(arange5x5(), one_roi({1, 1, 3, 3}), {4, 4, 1.0, 0, true});
  CHECK(out.to_vector<float>() == V{4.5, 5.0, 5.5, 6.0, 7.0, 7.5, 8.0, 8.5, 9.5, 10.0, 10.5, 11.0, 12.0, 12.5, 13.0, 13.5});
}

TEST_CASE("RoIAlign on a 5x5 arange, not aligned (Detectron)", "[detection][roi_align]") {
  // Without the shift the box spans [1, 3]: samples at 1.25, 1.75, 2.25, 2.75.
  const Tensor out = roi_align(arange5x5(), one_roi({1, 1, 3, 3}), {4, 4, 1.0, 0, false});
  CHECK(out.to_vector<float>() == V{7.5, 8, 8.5, 9, 10, 10.5, 11, 11.5, 12.5, 13, 13.5, 14, 15, 15.5, 16, 16.5});
}

TEST_CASE("RoIAlign clamps samples at the border and zeroes those outside", "[detection][roi_align]") {
  // [3.5, 5.5] aligned -> [3, 5], one 2x2-sampled bin: samples at 3.5 and 4.5; 4.5 lies past the
  // last row/column (4) and is clamped to 4. Mean of v at (3.5|4, 3.5|4) = (21 + 21.5 + 23.5 + 24) / 4.
  CHECK(roi_align(arange5x5(), one_roi({3.5, 3.5, 5.5, 5.5}), {1, 1, 1.0, 2, true}).item<float>() == 22.5f);
  // Entirely beyond x > W: every sample contributes 0.
  CHECK(roi_align(arange5x5(), one_roi({10, 10, 12, 12}), {2, 2, 1.0, 0, true}).to_vector<float>() == V{0, 0, 0, 0});
  // spatial_scale 0.5 maps [2, 2, 6, 6] onto [1, 1, 3, 3] of the map: same as the aligned=false case.
  CHECK(roi_align(arange5x5(), one_roi({2, 2, 6, 6}), {4, 4, 0.5, 0, false}).to_vector<float>()[0] == 7.5f);
}

TEST_CASE("RoIAlign backward spreads each output's gradient with weights summing to 1", "[detection][roi_align]") {
  Tensor x = arange5x5().set_requires_grad();
  const Tensor out = roi_align(x, one_roi({1, 1, 3, 3}), {4, 4, 1.0, 0, true});
  sum(out).backward();
  CHECK(sum(x.grad()).item<float>() == Approx(16.0f));
  // Samples at 0.75..2.25 touch rows and columns 0..3 only.
  const std::vector<float> g = x.grad().to_vector<float>();
  for (int i = 0; i < 5; ++i) CHECK(g[4 * 5 + i] == 0.0f);
}

// The CPU kernel pools 16 channels at a time, sharing each sample's offsets and weights; every
// channel must still get exactly the per-sample formula's arithmetic in its order (the CUDA
// kernel's too). 37 channels: two blocks of 16 and 5 alone; 9 RoIs over two images, some partly
// or wholly off the map, large and small (adaptive grids of 1 to 4 samples per axis); forward and
// backward compared bit for bit with a plain loop over roi::bilinear, with 1 thread and 2.
TEST_CASE("RoIAlign over many channels is the per-sample formula bit for bit", "[detection][roi_align]") {
  Generator gen(23);
  const int64_t N = 2, C = 37, H = 23, W = 31;
  const Tensor x = randn({N, C, H, W}, gen);
  const std::vector<float> boxes = {0, 2, 3, 40, 30,    1, -10, -5, 20, 18,  0, 50, 40, 70, 60,   1, 0, 0, 124, 92,
                                    0, 30, 20, 31, 21,  1, 100, 60, 140, 100, 0, 7.3f, 9.1f, 90.2f, 55.7f,
                                    1, 61, 2, 119, 88,  0, -30, -30, -2, -1};
  const Tensor rois = from_data<float>(boxes, {9, 5});
  for (const RoIAlignParams p : {RoIAlignParams{7, 7, 0.25, 0, true}, RoIAlignParams{5, 4, 0.25, 2, false}}) {
    const int64_t K = 9, bins = p.out_h * p.out_w;
    std::vector<float> want(static_cast<size_t>(K * C * bins)), want_dx(static_cast<size_t>(N * C * H * W), 0.0f);
    const Tensor dy = randn({K, C, p.out_h, p.out_w}, gen);
    const std::vector<float> xv = x.to_vector<float>(), dyv = dy.to_vector<float>();
    for (int64_t k = 0; k < K; ++k) {
      const roi::Geometry<float> g = roi::geometry(boxes.data() + 5 * k, p);
      for (int64_t c = 0; c < C; ++c) {
        const float* plane = xv.data() + (g.batch * C + c) * H * W;
        float* dplane = want_dx.data() + (g.batch * C + c) * H * W;
        for (int64_t ph = 0; ph < p.out_h; ++ph) {
          for (int64_t pw = 0; pw < p.out_w; ++pw) {
            float acc = 0;
            const float share = dyv[(k * C + c) * bins + ph * p.out_w + pw] / g.count;
            for (int64_t iy = 0; iy < g.grid_h; ++iy) {
              for (int64_t ix = 0; ix < g.grid_w; ++ix) {
                roi::Bilinear<float> b;
                if (!roi::bilinear(roi::sample_y(g, ph, iy), roi::sample_x(g, pw, ix), H, W, &b)) continue;
                acc += b.w00 * plane[b.y0 * W + b.x0] + b.w01 * plane[b.y0 * W + b.x1] + b.w10 * plane[b.y1 * W + b.x0] +
                       b.w11 * plane[b.y1 * W + b.x1];
                dplane[b.y0 * W + b.x0] += share * b.w00;
                dplane[b.y0 * W + b.x1] += share * b.w01;
                dplane[b.y1 * W + b.x0] += share * b.w10;
                dplane[b.y1 * W + b.x1] += share * b.w11;
              }
            }
            want[(k * C + c) * bins + ph * p.out_w + pw] = acc / g.count;
          }
        }
      }
    }
    const int saved_threads = omp_get_max_threads();
    for (const int threads : {1, 2}) {
      CAPTURE(p.out_h, p.sampling_ratio, threads);
      omp_set_num_threads(threads);
      Tensor out = full({K, C, p.out_h, p.out_w}, std::nan(""));
      roi_align_kernel(kCPU, out, x, rois, p);
      CHECK(out.to_vector<float>() == want);
      Tensor dx = zeros({N, C, H, W});
      roi_align_backward_kernel(kCPU, dx, dy, rois, p);
      CHECK(dx.to_vector<float>() == want_dx);
    }
    omp_set_num_threads(saved_threads);
  }
}

TEST_CASE("RoIAlign rejects bad inputs clearly", "[detection][roi_align][errors]") {
  CHECK_THROWS_WITH(roi_align(arange5x5(), from_data<float>({1, 0, 0, 1, 1}, {1, 5}), {}),
                    Catch::Contains("batch index 1 outside the batch of 1"));
  CHECK_THROWS_WITH(roi_align(arange5x5(), zeros({1, 4}), {}), Catch::Contains("(K, 5)"));
}
