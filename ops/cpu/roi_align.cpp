// CPU RoIAlign.
//
// A RoI's bilinear weights are separable (ops/roi_align_math.h: axis_sample), and the same for
// every channel, so each RoI's rows and columns of samples are resolved once into small tables
// (out_h * grid_h + out_w * grid_w entries) and the channels then only load, multiply and add,
// kChannelBlock of them per pass over the tables. The arithmetic, and its order, is the
// per-sample formula's (roi::bilinear), so results are bit-identical to it and to the CUDA
// kernel's formula (tested).
// Forward: one task per (RoI, chunk of channels). Backward: parallel over channels, so no two
// threads ever add into the same gradient element.
#include <algorithm>
#include <atomic>
#include <omp.h>
#include <vector>

#include "ops/roi_align.h"
#include "ops/roi_align_math.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

// The sample rows (out_h x grid_h) and columns (out_w x grid_w) of one RoI.
template <class T>
struct SampleTables {
  std::vector<roi::AxisSample<T>> rows, cols;

  void fill(const roi::Geometry<T>& g, const RoIAlignParams& p, int64_t H, int64_t W) {
    rows.resize(static_cast<size_t>(p.out_h * g.grid_h));
    cols.resize(static_cast<size_t>(p.out_w * g.grid_w));
    for (int64_t ph = 0; ph < p.out_h; ++ph) {
      for (int64_t iy = 0; iy < g.grid_h; ++iy) rows[ph * g.grid_h + iy] = roi::axis_sample(roi::sample_y(g, ph, iy), H);
    }
    for (int64_t pw = 0; pw < p.out_w; ++pw) {
      for (int64_t ix = 0; ix < g.grid_w; ++ix) cols[pw * g.grid_w + ix] = roi::axis_sample(roi::sample_x(g, pw, ix), W);
    }
  }
};

// Calls visit(offset00, offset01, offset10, offset11, w00, w01, w10, w11) for every sample of bin
// (ph, pw) that lies on the map, in the order of the per-sample formula.
template <class T, class Visit>
inline void for_each_sample(const SampleTables<T>& t, const roi::Geometry<T>& g, int64_t ph, int64_t pw, int64_t W,
                            Visit&& visit) {
  for (int64_t iy = 0; iy < g.grid_h; ++iy) {
    const roi::AxisSample<T>& ay = t.rows[ph * g.grid_h + iy];
    if (!ay.inside) continue;
    const int64_t r0 = ay.lo * W, r1 = ay.hi * W;
    for (int64_t ix = 0; ix < g.grid_w; ++ix) {
      const roi::AxisSample<T>& ax = t.cols[pw * g.grid_w + ix];
      if (!ax.inside) continue;
      visit(r0 + ax.lo, r0 + ax.hi, r1 + ax.lo, r1 + ax.hi, ay.h * ax.h, ay.h * ax.l, ay.l * ax.h, ay.l * ax.l);
    }
  }
}

// The bins of B consecutive channels of one RoI (planes HW apart, outputs `bins` apart), each
// sample's offsets and weights read once for all B: B independent sums instead of one chain of
// adds per channel, and the tables walked once per B channels. Every channel's arithmetic and its
// order are the one-channel loop's, so B changes no bit. In an inference with 100 detections
// RoIAlign was 9-10% of the time, one channel at a time; 1000 RoIs of 16-116 pixels on P2 (7 x 7,
// adaptive sampling) took 236-370 ms that way, 105-157 ms with 8 channels, 87-132 with 16.
constexpr int64_t kChannelBlock = 16;

template <int64_t B, class T>
void pool_channels(const SampleTables<T>& tables, const roi::Geometry<T>& g, const RoIAlignParams& p, int64_t HW,
                   int64_t W, const T* planes, T* dst) {
  const int64_t bins = p.out_h * p.out_w;
  for (int64_t ph = 0; ph < p.out_h; ++ph) {
    for (int64_t pw = 0; pw < p.out_w; ++pw) {
      T acc[B] = {};
      for_each_sample(tables, g, ph, pw, W, [&](int64_t o00, int64_t o01, int64_t o10, int64_t o11, T w00, T w01, T w10, T w11) {
        for (int64_t b = 0; b < B; ++b) {
          const T* plane = planes + b * HW;
          acc[b] += w00 * plane[o00] + w01 * plane[o01] + w10 * plane[o10] + w11 * plane[o11];
        }
      });
      for (int64_t b = 0; b < B; ++b) dst[b * bins + ph * p.out_w + pw] = acc[b] / g.count;
    }
  }
}

// The backward's counterpart: each bin's gradient spread over B channels' planes, sample by
// sample, every channel's additions in the one-channel loop's order.
template <int64_t B, class T>
void spread_channels(const SampleTables<T>& tables, const roi::Geometry<T>& g, const RoIAlignParams& p, int64_t HW,
                     int64_t W, const T* src, T* planes) {
  const int64_t bins = p.out_h * p.out_w;
  for (int64_t ph = 0; ph < p.out_h; ++ph) {
    for (int64_t pw = 0; pw < p.out_w; ++pw) {
      T share[B];
      for (int64_t b = 0; b < B; ++b) share[b] = src[b * bins + ph * p.out_w + pw] / g.count;
      for_each_sample(tables, g, ph, pw, W, [&](int64_t o00, int64_t o01, int64_t o10, int64_t o11, T w00, T w01, T w10, T w11) {
        for (int64_t b = 0; b < B; ++b) {
          T* plane = planes + b * HW;
          plane[o00] += share[b] * w00;
          plane[o01] += share[b] * w01;
          plane[o10] += share[b] * w10;
          plane[o11] += share[b] * w11;
        }
      });
    }
  }
}

void roi_align_cpu(const Tensor& out, const Tensor& x, const Tensor& rois, RoIAlignParams p) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = rois.size(0);
  const int64_t bins = p.out_h * p.out_w;
  std::atomic<int64_t> bad_batch{-1};
  dispatch_floating(x.dtype(), "roi_align", [&]<class T>() {
    const T* in = static_cast<const T*>(x.raw_data());
    const T* rr = static_cast<const T*>(rois.raw_data());
    T* o = static_cast<T*>(out.raw_data());
    // Enough tasks for the threads to balance when there are few RoIs; whole RoIs otherwise.
    const bool parallel = out.numel() >= cpu::kParallelGrain / 4;
    const int64_t want = parallel ? 4 * static_cast<int64_t>(omp_get_max_threads()) : 1;
    const int64_t chunks = std::clamp<int64_t>((want + K - 1) / std::max<int64_t>(K, 1), 1, std::max<int64_t>(C, 1));
    const int64_t per_chunk = (C + chunks - 1) / chunks;
#pragma omp parallel if (parallel)
    {
      SampleTables<T> tables;
#pragma omp for collapse(2) schedule(dynamic)
      for (int64_t k = 0; k < K; ++k) {
        for (int64_t chunk = 0; chunk < chunks; ++chunk) {
          const roi::Geometry<T> g = roi::geometry(rr + 5 * k, p);
          if (g.batch < 0 || g.batch >= N) {
            bad_batch = g.batch;
            continue;
          }
          tables.fill(g, p, H, W);
          const int64_t c0 = chunk * per_chunk, c1 = std::min(C, (chunk + 1) * per_chunk);
          const T* planes = in + (g.batch * C + c0) * H * W;
          T* dst = o + (k * C + c0) * bins;
          int64_t c = c0;
          for (; c + kChannelBlock <= c1; c += kChannelBlock) {
            pool_channels<kChannelBlock>(tables, g, p, H * W, W, planes + (c - c0) * H * W, dst + (c - c0) * bins);
          }
          for (; c < c1; ++c) pool_channels<1>(tables, g, p, H * W, W, planes + (c - c0) * H * W, dst + (c - c0) * bins);
        }
      }
    }
  });
  GNDET_CHECK(bad_batch < 0, "roi_align: RoI batch index ", bad_batch.load(), " outside the batch of ", N, " images");
}

void roi_align_backward_cpu(const Tensor& grad_x, const Tensor& grad_out, const Tensor& rois, RoIAlignParams p) {
  const int64_t N = grad_x.size(0), C = grad_x.size(1), H = grad_x.size(2), W = grad_x.size(3), K = rois.size(0);
  const int64_t bins = p.out_h * p.out_w;
  dispatch_floating(grad_x.dtype(), "roi_align_backward", [&]<class T>() {
    T* gx = static_cast<T*>(grad_x.raw_data());
    const T* go = static_cast<const T*>(grad_out.raw_data());
    const T* rr = static_cast<const T*>(rois.raw_data());
#pragma omp parallel if (grad_out.numel() >= cpu::kParallelGrain / 4)
    {
      SampleTables<T> tables;
      // Each thread owns a block of channels and resolves every RoI's tables for it: a RoI's
      // tables cost out_h * grid_h + out_w * grid_w samples, its scatter a channel-block's worth.
      const int threads = omp_get_num_threads(), me = omp_get_thread_num();
      const int64_t c0 = C * me / threads, c1 = C * (me + 1) / threads;
      for (int64_t k = 0; k < K && c1 > c0; ++k) {
        const roi::Geometry<T> g = roi::geometry(rr + 5 * k, p);
        if (g.batch < 0 || g.batch >= N) continue;  // the forward already refused it
        tables.fill(g, p, H, W);
        T* planes = gx + (g.batch * C + c0) * H * W;
        const T* src = go + (k * C + c0) * bins;
        int64_t c = c0;
        for (; c + kChannelBlock <= c1; c += kChannelBlock) {
          spread_channels<kChannelBlock>(tables, g, p, H * W, W, src + (c - c0) * bins, planes + (c - c0) * H * W);
        }
        for (; c < c1; ++c) spread_channels<1>(tables, g, p, H * W, W, src + (c - c0) * bins, planes + (c - c0) * H * W);
      }
    }
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(roi_align_kernel, CPU, roi_align_cpu);
GNDET_REGISTER_KERNEL(roi_align_backward_kernel, CPU, roi_align_backward_cpu);

}  // namespace gndet
