// CPU RoIAlign. Forward: one task per (roi, channel). Backward: parallel over channels, so no two
// threads ever add into the same gradient element.
#include <atomic>

#include "ops/roi_align.h"
#include "ops/roi_align_math.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

struct BadBatch {
  std::atomic<int64_t> index{-1};
};

void roi_align_cpu(const Tensor& out, const Tensor& x, const Tensor& rois, RoIAlignParams p) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = rois.size(0);
  BadBatch bad;
  dispatch_floating(x.dtype(), "roi_align", [&]<class T>() {
    const T* in = static_cast<const T*>(x.raw_data());
    const T* rr = static_cast<const T*>(rois.raw_data());
    T* o = static_cast<T*>(out.raw_data());
#pragma omp parallel for collapse(2) schedule(dynamic, 4) if (out.numel() >= cpu::kParallelGrain / 4)
    for (int64_t k = 0; k < K; ++k) {
      for (int64_t c = 0; c < C; ++c) {
        const roi::Geometry<T> g = roi::geometry(rr + 5 * k, p);
        T* dst = o + (k * C + c) * p.out_h * p.out_w;
        if (g.batch < 0 || g.batch >= N) {
          bad.index = g.batch;
          continue;
        }
        const T* plane = in + (g.batch * C + c) * H * W;
        for (int64_t ph = 0; ph < p.out_h; ++ph) {
          for (int64_t pw = 0; pw < p.out_w; ++pw) {
            T acc = 0;
            for (int64_t iy = 0; iy < g.grid_h; ++iy) {
              const T y = roi::sample_y(g, ph, iy);
              for (int64_t ix = 0; ix < g.grid_w; ++ix) {
                roi::Bilinear<T> b;
                if (!roi::bilinear(y, roi::sample_x(g, pw, ix), H, W, &b)) continue;
                acc += b.w00 * plane[b.y0 * W + b.x0] + b.w01 * plane[b.y0 * W + b.x1] +
                       b.w10 * plane[b.y1 * W + b.x0] + b.w11 * plane[b.y1 * W + b.x1];
              }
            }
            dst[ph * p.out_w + pw] = acc / g.count;
          }
        }
      }
    }
  });
  GNDET_CHECK(bad.index < 0, "roi_align: RoI batch index ", bad.index.load(), " outside the batch of ", N, " images");
}

void roi_align_backward_cpu(const Tensor& grad_x, const Tensor& grad_out, const Tensor& rois, RoIAlignParams p) {
  const int64_t N = grad_x.size(0), C = grad_x.size(1), H = grad_x.size(2), W = grad_x.size(3), K = rois.size(0);
  dispatch_floating(grad_x.dtype(), "roi_align_backward", [&]<class T>() {
    T* gx = static_cast<T*>(grad_x.raw_data());
    const T* go = static_cast<const T*>(grad_out.raw_data());
    const T* rr = static_cast<const T*>(rois.raw_data());
#pragma omp parallel for schedule(static) if (grad_out.numel() >= cpu::kParallelGrain / 4)
    for (int64_t c = 0; c < C; ++c) {
      for (int64_t k = 0; k < K; ++k) {
        const roi::Geometry<T> g = roi::geometry(rr + 5 * k, p);
        if (g.batch < 0 || g.batch >= N) continue;  // the forward already refused it
        T* plane = gx + (g.batch * C + c) * H * W;
        const T* src = go + (k * C + c) * p.out_h * p.out_w;
        for (int64_t ph = 0; ph < p.out_h; ++ph) {
          for (int64_t pw = 0; pw < p.out_w; ++pw) {
            const T share = src[ph * p.out_w + pw] / g.count;
            for (int64_t iy = 0; iy < g.grid_h; ++iy) {
              const T y = roi::sample_y(g, ph, iy);
              for (int64_t ix = 0; ix < g.grid_w; ++ix) {
                roi::Bilinear<T> b;
                if (!roi::bilinear(y, roi::sample_x(g, pw, ix), H, W, &b)) continue;
                plane[b.y0 * W + b.x0] += share * b.w00;
                plane[b.y0 * W + b.x1] += share * b.w01;
                plane[b.y1 * W + b.x0] += share * b.w10;
                plane[b.y1 * W + b.x1] += share * b.w11;
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(roi_align_kernel, CPU, roi_align_cpu);
GNDET_REGISTER_KERNEL(roi_align_backward_kernel, CPU, roi_align_backward_cpu);

}  // namespace gndet
