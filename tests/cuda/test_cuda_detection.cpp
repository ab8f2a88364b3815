// CUDA parity of the detection ops with their CPU kernels, on poisoned outputs: box overlaps and
// NMS exactly (the same IoUs, the same kept boxes, ties included), RoIAlign forward and backward,
// mask pasting. The whole tiny model on both devices: test_cuda_model.cpp.
#include <cmath>

// First: its unqualified floor / ceil must not see gndet::floor(const Tensor&) of ops/elementwise.h,
// which would hide ::floor at the template's definition.
#include "ops/paste_masks_math.h"
//
#include "tensor/grad_mode.h"
#include "ops/box_iou.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/nms.h"
#include "ops/paste_masks.h"
#include "ops/reduce.h"
#include "ops/roi_align.h"
#include "tests/cuda/parity.h"

using namespace gndet;
using test::check_close;
using test::check_equal;
using test::gpu;

namespace {

// K boxes (x1, y1, x2, y2) inside a `extent` square with sides in [1, max_side); `dup` of them
// repeat an earlier box exactly (IoU 1) and a few are degenerate (zero width).
Tensor random_boxes(int64_t K, uint64_t seed, double extent = 100.0, double max_side = 40.0, int64_t dup = 0,
                    DType dt = kFloat32) {
  Generator gen(seed);
  std::vector<double> v(static_cast<size_t>(4 * K));
  for (int64_t i = 0; i < K; ++i) {
    const double x = extent * gen.uniform(), y = extent * gen.uniform();
    const double w = 1.0 + (max_side - 1.0) * gen.uniform(), h = 1.0 + (max_side - 1.0) * gen.uniform();
    v[4 * i] = x, v[4 * i + 1] = y, v[4 * i + 2] = x + w, v[4 * i + 3] = y + h;
    if (i % 37 == 5) v[4 * i + 2] = x;  // zero width
  }
  for (int64_t d = 0; d < dup && d + 1 < K; ++d) {
    const int64_t src = static_cast<int64_t>(gen.uniform() * static_cast<double>(K - 1));
    const int64_t dst = (src + 1 + d) % K;
    for (int k = 0; k < 4; ++k) v[4 * dst + k] = v[4 * src + k];
  }
  return from_data<double>(v, {K, 4}).to(dt);
}

}  // namespace

TEST_CASE("cuda parity: box overlaps (IoU and IoF) equal the CPU's bit for bit", "[cuda][detection]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  for (const DType dt : {kFloat32, kFloat64}) {
    for (const OverlapMode mode : {OverlapMode::IoU, OverlapMode::IoF}) {
      INFO(dtype_name(dt) << (mode == OverlapMode::IoU ? " IoU" : " IoF"));
      const Tensor a = random_boxes(53, 16000, 100, 40, 5, dt), b = random_boxes(71, 16001, 100, 40, 0, dt);
      const Tensor ab = cat({a, b.narrow(0, 0, 7)}, 0);  // some boxes in both sets: IoU exactly 1
      Tensor oc = test::poisoned({60, 71}, TensorOptions(dt)), og = test::poisoned({60, 71}, TensorOptions(dt, gpu()));
      box_overlaps_kernel(kCPU, oc, ab, b, mode);
      box_overlaps_kernel(gpu(), og, ab.to(gpu()), b.to(gpu()), mode);
      check_equal(og, oc);
    }
  }
}

TEST_CASE("cuda parity: NMS keeps exactly the CPU's boxes", "[cuda][detection][nms]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  uint64_t seed = 17000;
  // Sizes around the 64-box blocks of the mask kernel; crowded boxes so that most suppress others.
  for (const int64_t K : {1, 2, 63, 64, 65, 200, 1000, 3000}) {
    for (const double thr : {0.3, 0.5, 0.7}) {
      for (const DType dt : {kFloat32, kFloat64}) {
        INFO("K " << K << " threshold " << thr << " " << dtype_name(dt));
        const Tensor boxes = random_boxes(K, seed++, 60.0, 30.0, K / 10, dt);
        const Tensor kc = nms_sorted_kernel(kCPU, boxes, thr);
        const Tensor kg = nms_sorted_kernel(gpu(), boxes.to(gpu()), thr);
        REQUIRE(kg.device() == gpu());
        check_equal(kg.cpu(), kc, "kept positions");
      }
    }
  }
}

TEST_CASE("cuda parity: nms and batched_nms with tied scores", "[cuda][detection][nms]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const int64_t K = 500;
  const Tensor boxes = random_boxes(K, 17500, 80.0, 30.0, 40);
  // Scores on a coarse grid: many ties, which both devices break by the lower index.
  const Tensor scores = test::random_ints({K}, 17501, 0, 20, kFloat32) * 0.05;
  const Tensor idxs = test::random_ints({K}, 17502, 0, 4);
  for (const double thr : {0.5, 0.7}) {
    INFO("threshold " << thr);
    check_equal(nms(boxes.to(gpu()), scores.to(gpu()), thr).cpu(), nms(boxes, scores, thr), "nms");
    check_equal(batched_nms(boxes.to(gpu()), scores.to(gpu()), idxs.to(gpu()), thr).cpu(),
                batched_nms(boxes, scores, idxs, thr), "batched_nms");
  }
  CHECK(nms(empty({0, 4}, gpu()), empty({0}, gpu()), 0.5).numel() == 0);
}

// RoIAlign tolerances: each output averages up to grid_h * grid_w bilinear samples of values below
// 3 in float with the same formulas (only FMA fusion differs): 1e-5. The backward adds, with
// atomics in another order, up to a few hundred contributions of |grad| / count per element
// (RoIs overlap): 1e-5 absolute + 1e-5 relative.
TEST_CASE("cuda parity: roi_align forward and backward", "[cuda][detection][roi_align]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const Shape xs{2, 8, 20, 24};
  uint64_t seed = 18000;
  for (const DType dt : {kFloat32, kFloat64}) {
    const Tensor x = test::random_nonzero(xs, seed++, dt);
    // Boxes in image pixels (scale 1/4 maps them onto the 20 x 24 map): inside, across the border,
    // entirely outside, tiny (below one feature pixel) and large.
    Tensor boxes = random_boxes(40, seed++, 90.0, 60.0, 0, kFloat64);
    boxes = cat({boxes, from_data<double>({-10, -8, 20, 30, 100, 70, 130, 90, 40, 40, 40.5, 40.3, 0, 0, 95, 79}, {4, 4})}, 0);
    const Tensor batch = test::random_ints({44, 1}, seed++, 0, 2).to(kFloat64);
    const Tensor rois = cat({batch, boxes}, 1).to(dt);
    const Tensor rg = rois.to(gpu()), xg = x.to(gpu());
    for (const RoIAlignParams p : {RoIAlignParams{7, 7, 0.25, 0, true}, RoIAlignParams{14, 14, 0.25, 0, true},
                                   RoIAlignParams{7, 7, 0.25, 2, false}, RoIAlignParams{5, 3, 0.5, 1, true}}) {
      INFO(dtype_name(dt) << " out " << p.out_h << "x" << p.out_w << " scale " << p.spatial_scale << " sampling "
                          << p.sampling_ratio << " aligned " << p.aligned);
      const Shape os{44, xs[1], p.out_h, p.out_w};
      Tensor oc = test::poisoned(os, TensorOptions(dt)), og = test::poisoned(os, TensorOptions(dt, gpu()));
      roi_align_kernel(kCPU, oc, x, rois, p);
      roi_align_kernel(gpu(), og, xg, rg, p);
      check_close(og, oc, dt == kFloat32 ? 1e-5 : 1e-12, 1e-5, "forward");
      const Tensor go = test::random_nonzero(os, seed++, dt);
      Tensor gc = zeros(xs, TensorOptions(dt)), gg = zeros(xs, TensorOptions(dt, gpu()));  // zeroed by contract
      roi_align_backward_kernel(kCPU, gc, go, rois, p);
      roi_align_backward_kernel(gpu(), gg, go.to(gpu()), rg, p);
      check_close(gg, gc, dt == kFloat32 ? 1e-5 : 1e-12, 1e-5, "backward");
    }
  }
  // A batch index outside the batch: the CPU's error.
  const Tensor x = test::random_nonzero({1, 2, 5, 5}, 18500).to(gpu());
  const Tensor bad = from_data<float>({0, 1, 1, 3, 3, 3, 1, 1, 3, 3}, {2, 5}).to(gpu());
  Tensor out = empty({2, 2, 2, 2}, gpu());
  CHECK_THROWS_WITH(roi_align_kernel(gpu(), out, x, bad, RoIAlignParams{2, 2, 1.0, 0, true}),
                    Catch::Contains("RoI batch index 3 outside the batch of 1 images"));
}

TEST_CASE("cuda parity: paste_masks, up to probabilities within rounding of the threshold", "[cuda][detection]") {
  GNDET_REQUIRE_CUDA();
  autograd::NoGradGuard no_grad;
  const int64_t D = 7, M = 28, H = 61, W = 83;
  const Tensor probs = test::random_nonzero({D, M, M}, 19000, kFloat32, 0.0, 1.0, true);
  // Inside, across every border, larger than the image, tiny, and degenerate (x2 == x1).
  const Tensor boxes = from_data<float>({10, 5, 50, 40, -20, -10, 30, 25, 60, 40, 100, 80, -5, -5, 90, 70,
                                         20.3f, 30.7f, 21.1f, 31.2f, 40, 10, 40, 30, 2.5f, 3.5f, 80.25f, 58.75f},
                                        {D, 4});
  for (const double thr : {0.5, 0.3}) {
    INFO("threshold " << thr);
    Tensor oc = zeros({D, H, W}, kUInt8), og = zeros({D, H, W}, TensorOptions(kUInt8, gpu()));  // zeroed by contract
    paste_masks_kernel(kCPU, oc, probs, boxes, thr);
    paste_masks_kernel(gpu(), og, probs.to(gpu()), boxes.to(gpu()), thr);
    // The GPU may fuse the interpolation's multiply-adds: a pixel may differ only where the
    // sampled probability lies within 1e-5 of the threshold (recomputed here with the CPU's math).
    const std::vector<uint8_t> c = oc.to_vector<uint8_t>(), g = og.cpu().to_vector<uint8_t>();
    const float* pp = static_cast<const float*>(probs.raw_data());
    const float* bb = static_cast<const float*>(boxes.raw_data());
    int64_t differ = 0, unexplained = 0, set = 0;
    for (int64_t d = 0; d < D; ++d) {
      for (int64_t y = 0; y < H; ++y) {
        for (int64_t x = 0; x < W; ++x) {
          const size_t i = static_cast<size_t>((d * H + y) * W + x);
          set += c[i];
          if (c[i] == g[i]) continue;
          ++differ;
          const float v = paste::map_coord<float>(y, bb[4 * d + 1], bb[4 * d + 3], M);
          const float u = paste::map_coord<float>(x, bb[4 * d], bb[4 * d + 2], M);
          if (std::abs(paste::sample(pp + d * M * M, M, v, u) - static_cast<float>(thr)) > 1e-5f) ++unexplained;
        }
      }
    }
    INFO(differ << " pixels differ, " << unexplained << " of them away from the threshold; " << set << " set");
    CHECK(unexplained == 0);
    CHECK(set > 1000);  // the comparison is not vacuous
  }
}
