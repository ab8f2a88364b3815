// How far gndet's float32 backbone / FPN outputs are from its own float64 run of the same model:
// for the stem, C2..C5 (ResNet stages) and P2..P6 (FPN levels), max |f32 - f64| / max |f64| (issue 12's
// accuracy target; bench/torch_float32_accuracy.py measures the same for mmdetection / PyTorch).
//
//   float32_accuracy [--config PATH] [--dir DIR] [--height 800] [--width 1088] [--seed 0]
//
// Default model: X-101 32x4d GN+WS Mask R-CNN, a deep stack of grouped convolutions, WS and GN.
// With --dir (written by bench/torch_float32_accuracy.py) the model's weights and the image are
// mmdetection's: DIR/model.pth, DIR/input.f32; and gndet's float64 C5 / P5 are compared with
// PyTorch's float64 ones (DIR/c5_f64.f64, p5_f64.f64), which shows both ran the same model.
// Without --dir: gndet's own seeded random init and a seeded N(0, 1) image.
// The float32 convolutions take gndet's default algorithms (GNDET_WINOGRAD=0: direct only).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "detection/detector.h"
#include "gndet_config.h"
#include "nn/checkpoint.h"
#include "ops/cpu/conv_winograd.h"
#include "tensor/config.h"
#include "tensor/factory.h"
#include "tensor/grad_mode.h"
#include "tensor/random.h"

using namespace gndet;

namespace {

struct Args {
  std::string config = std::string(GNDET_SOURCE_DIR) + "/configs/gn+ws/mask-rcnn_x101-32x4d_fpn_gn-ws-all_2x_coco.json";
  std::string dir;
  int64_t height = 800, width = 1088;
  uint64_t seed = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    GNDET_CHECK(i + 1 < argc, "float32_accuracy: ", k, " needs a value");
    const std::string v = argv[++i];
    if (k == "--config") a.config = v;
    else if (k == "--dir") a.dir = v;
    else if (k == "--height") a.height = std::stoll(v);
    else if (k == "--width") a.width = std::stoll(v);
    else if (k == "--seed") a.seed = std::stoull(v);
    else GNDET_FAIL("float32_accuracy: unknown option ", k);
  }
  return a;
}

// A raw little-endian file of `shape` elements of T, as numpy's tofile writes it.
template <class T>
Tensor read_raw(const std::string& path, const Shape& shape) {
  Tensor t = empty(shape, dtype_of<T>());
  std::ifstream f(path, std::ios::binary);
  GNDET_CHECK(f.good(), "float32_accuracy: cannot open ", path);
  f.read(static_cast<char*>(t.raw_data()), static_cast<std::streamsize>(t.numel() * sizeof(T)));
  GNDET_CHECK(f.gcount() == static_cast<std::streamsize>(t.numel() * sizeof(T)), path, ": expected ", t.numel(),
              " values of shape ", shape_str(shape));
  return t;
}

// max |a - b| / max |b|, in double.
double relative_max_error(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.to(kFloat64).contiguous().to_vector<double>(), y = b.to(kFloat64).contiguous().to_vector<double>();
  GNDET_CHECK(x.size() == y.size(), "float32_accuracy: size mismatch");
  double diff = 0, scale = 0;
  for (size_t i = 0; i < x.size(); ++i) diff = std::max(diff, std::abs(x[i] - y[i])), scale = std::max(scale, std::abs(y[i]));
  return diff / scale;
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  autograd::NoGradGuard no_grad;
  Generator gen(a.seed);
  TwoStageDetector model(load_config(a.config)["model"], gen);
  // Not strict: the file holds backbone and neck only; the float64 comparison with PyTorch's below
  // would show any weight that did not load.
  if (!a.dir.empty()) model.load_state_dict(nn::load_state_dict_from_file(a.dir + "/model.pth"), /*strict=*/false);
  model.eval();
  std::shared_ptr<ResNet> backbone;
  std::shared_ptr<FPN> neck;
  for (const auto& [name, child] : model.named_children()) {
    if (name == "backbone") backbone = std::dynamic_pointer_cast<ResNet>(child);
    if (name == "neck") neck = std::dynamic_pointer_cast<FPN>(child);
  }
  GNDET_CHECK(backbone && neck, "float32_accuracy: the model has no backbone / neck");
  const Shape image{1, 3, a.height, a.width};
  Generator image_gen(a.seed + 1);
  const Tensor x = a.dir.empty() ? randn(image, image_gen) : read_raw<float>(a.dir + "/input.f32", image);

  auto run = [&] {
    const Tensor input = x.to(backbone->parameters().at(0).dtype());
    std::vector<Tensor> out{backbone->stem(input)};
    const std::vector<Tensor> cs = backbone->forward(input);
    for (const Tensor& c : cs) out.push_back(c);
    for (const Tensor& p : neck->forward(cs)) out.push_back(p);
    return out;  // stem, C2..C5, P2..P6
  };
  const std::vector<Tensor> f32 = run();
  model.to(kFloat64);
  const std::vector<Tensor> f64 = run();

  std::printf("gndet, %s, input 1x3x%lldx%lld, %s, Winograd %s\n", a.config.c_str(), static_cast<long long>(a.height),
              static_cast<long long>(a.width), a.dir.empty() ? "gndet's random init" : (a.dir + "/model.pth").c_str(),
              winograd::enabled() ? "on (3x3 / stride-1 / ungrouped float32 convs)" : "off (GNDET_WINOGRAD=0)");
  if (!a.dir.empty()) {
    const Tensor c5 = read_raw<double>(a.dir + "/c5_f64.f64", f64[4].shape());
    const Tensor p5 = read_raw<double>(a.dir + "/p5_f64.f64", f64[8].shape());
    std::printf("same model as PyTorch's: float64 C5 %.1e, P5 %.1e (max |gndet - torch| / max |torch|)\n",
                relative_max_error(f64[4], c5), relative_max_error(f64[8], p5));
  }
  std::printf("level  max|f32-f64|/max|f64|\n");
  std::printf("stem   %.3e\n", relative_max_error(f32[0], f64[0]));
  for (size_t i = 1; i < f32.size(); ++i) {
    std::printf("%c%-4zu  %.3e\n", i < 5 ? 'C' : 'P', i < 5 ? i + 1 : i - 3, relative_max_error(f32[i], f64[i]));
  }
  return 0;
}
