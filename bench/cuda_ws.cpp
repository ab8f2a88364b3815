// What weight standardisation (GN+WS configs) adds to a convolution's training cost: for
// ResNet-50 layer shapes of a 2-image 800x1333 batch, the time of one training step of the
// convolution alone (forward, input gradient, weight gradient, through cuDNN when built with it)
// and of the two WS kernels (standardise the weight before the forward, and map the weight
// gradient back), measured in the same run with the default math (TF32 allowed, as in training).
// Target: WS adds < 3% to the convolution's time.
#include <cstdio>
#include <string>
#include <vector>

#include "bench/cuda_timer.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/norm.h"
#include "tensor/factory.h"
#include "tensor/random.h"

using namespace gndet;

namespace {

struct Layer {
  const char* name;
  Shape x, w;
  int64_t stride, pad;
};

Shape out_shape(const Layer& l) {
  return {l.x[0], l.w[0], (l.x[2] + 2 * l.pad - l.w[2]) / l.stride + 1, (l.x[3] + 2 * l.pad - l.w[3]) / l.stride + 1};
}

}  // namespace

int main() {
  try {
    if (!cuda::is_available()) {
      std::fprintf(stderr, "cuda_ws: no CUDA GPU present\n");
      return 2;
    }
    bench::print_header("gndet weight standardisation vs convolution (float32, TF32 as configured, median of 20 runs)");
    std::printf("TF32: %s\n\n", cuda::allow_tf32() ? "on" : "off");
    const Device gpu = Device::cuda(0);
    Generator gen(3);
    const std::vector<Layer> layers = {
        {"layer1 conv2 3x3", {2, 64, 200, 336}, {64, 64, 3, 3}, 1, 1},
        {"layer2 conv2 3x3", {2, 128, 100, 168}, {128, 128, 3, 3}, 1, 1},
        {"layer3 conv2 3x3", {2, 256, 50, 84}, {256, 256, 3, 3}, 1, 1},
        {"layer4 conv2 3x3", {2, 512, 25, 42}, {512, 512, 3, 3}, 1, 1},
        {"layer4 conv3 1x1", {2, 512, 25, 42}, {2048, 512, 1, 1}, 1, 0},
        {"layer3 downsample 1x1/2", {2, 512, 100, 168}, {1024, 512, 1, 1}, 2, 0},
    };
    std::printf("%-26s %12s %12s %12s %12s %8s\n", "layer (N=2, 800x1344)", "conv fwd ms", "conv bwd ms", "WS fwd ms",
                "WS bwd ms", "WS adds");
    double worst = 0.0;
    for (const Layer& l : layers) {
      const Conv2dParams p{{l.stride, l.stride}, {l.pad, l.pad}, {1, 1}, 1};
      const Shape ys = out_shape(l);
      const Tensor x = randn(l.x, gen, TensorOptions(kFloat32, gpu));
      const Tensor w = randn(l.w, gen, TensorOptions(kFloat32, gpu)) * 0.05;
      const Tensor dy = randn(ys, gen, TensorOptions(kFloat32, gpu));
      Tensor y = empty(ys, gpu), dx = empty(l.x, gpu), dw = empty(l.w, gpu), w_hat = empty(l.w, gpu), dw_raw = empty(l.w, gpu);
      const int64_t O = l.w[0], R = l.w[1] * l.w[2] * l.w[3];
      auto rows = [O, R](const Tensor& t) { return make_view(t, {O, R}, {R, 1}, t.offset()); };
      const double fwd = bench::median_ms([&] { conv2d_forward_kernel(gpu, y, x, w, Tensor(), p); });
      const double bwd = bench::median_ms([&] {
        conv2d_backward_input_kernel(gpu, dx, dy, w, p);
        conv2d_backward_weight_kernel(gpu, dw, dy, x, p);
      });
      const double ws_fwd = bench::median_ms([&] { weight_standardization_kernel(gpu, rows(w_hat), rows(w), 1e-5); });
      const double ws_bwd =
          bench::median_ms([&] { weight_standardization_backward_kernel(gpu, rows(dw_raw), rows(dw), rows(w), 1e-5); });
      const double added = (ws_fwd + ws_bwd) / (fwd + bwd);
      worst = std::max(worst, added);
      std::printf("%-26s %12.3f %12.3f %12.4f %12.4f %7.2f%%\n", l.name, fwd, bwd, ws_fwd, ws_bwd, 100.0 * added);
    }
    std::printf("\ntarget: WS adds < 3%% to the convolution's training time: worst layer %.2f%%, %s\n", 100.0 * worst,
                worst < 0.03 ? "met" : "NOT met");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_ws: %s\n", e.what());
    return 1;
  }
}
