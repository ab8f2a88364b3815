// One training iteration of mask-rcnn_r50_fpn_gn-all (forward, backward, SGD step) on a batch of
// two 800 x 1333 images, or (--mode infer) the inference of one such image, on the CPU or a GPU:
// the median of --iters timed iterations after --warmup untimed ones, and the peak memory (CUDA:
// the caching allocator's peak of allocated and reserved bytes over the timed iterations; CPU: the
// process's maximum resident set size).
//
//   model_iteration [--mode train|infer] [--device cpu|cuda] [--iters N] [--warmup N] [--config PATH] [--threads N]
//                   [--amp bf16|fp16] [--checkpoint PATH] [--image PATH [--detections JSON]]
//
// --checkpoint loads weights (a gndet checkpoint, safetensors, a PyTorch .pth or a Detectron .pkl)
// instead of the random initialisation. --image (infer only) times what `gndet infer` does for one
// picture instead of predict() on a prepared tensor: decoding the file, the config's test pipeline
// and the data preprocessor (resize, normalise, pad), predict(), and the masks pasted at the image's
// own size (app::Predictor); --detections writes the last iteration's detections (label, score,
// box, mask area) as JSON. bench/cpu_vs_mmdet.sh times this against mmdetection's
// inference_detector on the same .pth.
//
// --amp runs the forward pass under autocast (ops/autocast.h): the products on 16-bit operands.
// The loss scaler's multiply and unscale are left out (two passes over the gradients, not timed).
//
// Input: what the data pipeline would produce for two 800 x 1333 images (padded to 800 x 1344):
// random normalised pixels, 3 to 6 random ground-truth boxes per image with rectangular masks,
// fixed seeds. The learning rate is the first warm-up value (0.02 * 0.001), so that repeated
// iterations of a randomly initialised model stay finite; it does not change the work done.
// Inference runs predict() under no-grad on the first image: with random weights no class score
// reaches the 0.05 threshold, so the mask head gets no detections (printed), as in PyTorch's run
// (--checkpoint and --image give it real detections).
// The companion bench/torchvision_maskrcnn_gn.py times torchvision's Mask R-CNN with GroupNorm on
// the same input, when PyTorch is installed.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include <omp.h>

#include "apps/experiment.h"
#include "apps/predictor.h"
#include "tensor/config.h"
#include "data/image.h"
#include "detection/detector.h"
#include "gndet_config.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "ops/autocast.h"
#include "tensor/backend.h"
#include "tensor/cpu_allocator.h"
#include "tensor/cuda_api.h"
#include "tensor/factory.h"
#include "tensor/grad_mode.h"
#include "tensor/random.h"
#include "tensor/safetensors.h"

using namespace gndet;

namespace {

struct Args {
  std::string mode = "train";
  std::string device = "cpu";
  int iters = 3;
  int warmup = 1;
  int threads = 0;  // 0: OpenMP's default
  std::optional<DType> amp;  // --amp: autocast's type
  std::string checkpoint;    // --checkpoint: weights instead of the random initialisation
  std::string image;         // --image (infer): decode + test pipeline + predict() + pasted masks of this file
  std::string detections;    // --detections: the last iteration's detections as JSON (with --image)
  std::string config = std::string(GNDET_SOURCE_DIR) + "/configs/gn/mask-rcnn_r50_fpn_gn-all_2x_coco.json";
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      GNDET_CHECK(i + 1 < argc, "model_iteration: ", k, " needs a value");
      return argv[++i];
    };
    if (k == "--mode") {
      a.mode = value();
    } else if (k == "--device") {
      a.device = value();
    } else if (k == "--iters") {
      a.iters = std::stoi(value());
    } else if (k == "--warmup") {
      a.warmup = std::stoi(value());
    } else if (k == "--threads") {
      a.threads = std::stoi(value());
    } else if (k == "--config") {
      a.config = value();
    } else if (k == "--amp") {
      a.amp = autocast::parse_dtype(value(), "model_iteration: --amp");
    } else if (k == "--checkpoint") {
      a.checkpoint = value();
    } else if (k == "--image") {
      a.image = value();
    } else if (k == "--detections") {
      a.detections = value();
    } else {
      GNDET_FAIL("model_iteration: unknown argument ", k,
                 " (usage: model_iteration [--mode train|infer] [--device cpu|cuda] [--iters N] [--warmup N] [--config PATH] [--threads N] [--amp bf16|fp16] [--checkpoint PATH] [--image PATH [--detections JSON]])");
    }
  }
  GNDET_CHECK(a.iters >= 1 && a.warmup >= 0, "model_iteration: --iters must be >= 1 and --warmup >= 0");
  GNDET_CHECK(a.mode == "train" || a.mode == "infer", "model_iteration: --mode must be train or infer, not ", a.mode);
  GNDET_CHECK(a.image.empty() || a.mode == "infer", "model_iteration: --image needs --mode infer");
  GNDET_CHECK(a.detections.empty() || !a.image.empty(), "model_iteration: --detections needs --image");
  return a;
}

struct Inputs {
  Tensor images;
  std::vector<ImageTargets> targets;
  std::vector<ImageInfo> infos;
};

Inputs make_inputs(Device device) {
  const int64_t H = 800, W = 1333, PH = 800, PW = 1344;  // keep-ratio resize to (1333, 800), pad to 32
  Generator gen(2024);
  Inputs in;
  in.images = zeros({2, 3, PH, PW});
  in.images.narrow(2, 0, H).narrow(3, 0, W).copy_(randn({2, 3, H, W}, gen));  // the pad stays 0
  for (int i = 0; i < 2; ++i) {
    const int64_t G = 3 + static_cast<int64_t>(gen.uniform() * 4);
    std::vector<float> boxes;
    std::vector<int64_t> labels;
    ImageTargets t;
    t.masks = zeros({G, PH, PW}, kUInt8);
    for (int64_t k = 0; k < G; ++k) {
      const double w = 40 + 400 * gen.uniform(), h = 40 + 300 * gen.uniform();
      const double x = (static_cast<double>(W) - w - 1) * gen.uniform(), y = (static_cast<double>(H) - h - 1) * gen.uniform();
      boxes.insert(boxes.end(), {static_cast<float>(x), static_cast<float>(y), static_cast<float>(x + w),
                                 static_cast<float>(y + h)});
      labels.push_back(static_cast<int64_t>(gen.uniform() * 80));
      const int64_t x0 = static_cast<int64_t>(std::ceil(x)), y0 = static_cast<int64_t>(std::ceil(y));
      t.masks.select(0, k).narrow(0, y0, static_cast<int64_t>(y + h) - y0).narrow(1, x0, static_cast<int64_t>(x + w) - x0).fill_(1);
    }
    t.boxes = from_data<float>(boxes, {G, 4}).to(device);
    t.labels = from_data<int64_t>(labels).to(device);
    t.masks = t.masks.to(device);
    in.targets.push_back(t);
    in.infos.push_back({i, H, W, PH, PW, H, W, 1.0, 1.0, false});
  }
  in.images = in.images.to(device);
  return in;
}

// The detections of one image as JSON: label (0-based), score, box x1 y1 x2 y2 and mask area in pixels.
std::string detections_json(const std::string& image, const Detections& d) {
  const std::vector<float> scores = d.scores.to_vector<float>(), boxes = d.boxes.contiguous().to_vector<float>();
  const std::vector<int64_t> labels = d.labels.to_vector<int64_t>();
  std::vector<int64_t> areas;
  if (d.masks.defined() && d.masks.numel() > 0) {
    const std::vector<uint8_t> m = d.masks.contiguous().to_vector<uint8_t>();
    const size_t pixels = m.size() / scores.size();
    for (size_t k = 0; k < scores.size(); ++k) {
      areas.push_back(std::count_if(m.begin() + static_cast<std::ptrdiff_t>(k * pixels),
                                    m.begin() + static_cast<std::ptrdiff_t>((k + 1) * pixels), [](uint8_t v) { return v != 0; }));
    }
  }
  Json dets = Json::array();
  for (size_t k = 0; k < scores.size(); ++k) {
    Json j = {{"label", labels[k]},
              {"score", scores[k]},
              {"bbox_xyxy", {boxes[4 * k], boxes[4 * k + 1], boxes[4 * k + 2], boxes[4 * k + 3]}}};
    if (!areas.empty()) j["mask_area"] = areas[k];
    dets.push_back(j);
  }
  Json out = {{"image", image}, {"detections", dets}};
  if (d.masks.defined()) out["mask_size"] = {d.masks.size(1), d.masks.size(2)};
  return out.dump(1) + "\n";
}

double mib(int64_t bytes) { return static_cast<double>(bytes) / (1 << 20); }
std::string fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", v);
  return buf;
}

// How the large blocks allocated since `at_start` were served.
std::string block_reuse(const CpuCacheStats& at_start) {
  const CpuCacheStats now = cpu_cache_stats();
  return "large blocks from the cache / newly mapped: " + std::to_string(now.hits - at_start.hits) + " / " +
         std::to_string(now.misses - at_start.misses);
}

double max_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // KiB -> MiB
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args args = parse(argc, argv);
    const Device device = Device::parse(args.device);
    if (device.is_cuda()) {
      GNDET_CHECK(cuda::is_available(), "model_iteration: --device ", args.device, ": no CUDA GPU present",
                  cuda::is_built() ? "" : " (gndet was built without CUDA)");
      GNDET_CHECK(!cuda::is_emulated(), "model_iteration: --device ", args.device, " is the emulated CUDA device, which "
                  "runs kernels on the CPU to check them: its times say nothing about a GPU (build with nvcc)");
    }
    if (args.threads > 0) omp_set_num_threads(args.threads);
    std::string command = argv[0];
    for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
    char date[64];
    const std::time_t now = std::time(nullptr);
    std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
    const bool train = args.mode == "train";
    const bool on_image = !args.image.empty();
    if (train) {
      std::printf("gndet model iteration benchmark: forward + backward + SGD step, 2 images 800x1333 (padded 800x1344)\n");
    } else if (on_image) {
      std::printf("gndet model inference benchmark: decode, test pipeline, predict() under no-grad and masks pasted at "
                  "image size (app::Predictor, as gndet infer), image %s\n", args.image.c_str());
    } else {
      std::printf("gndet model inference benchmark: predict() under no-grad, 1 image 800x1333 (padded 800x1344)\n");
    }
    std::printf("config: %s\ncheckpoint: %s\ndevice: %s (OpenMP threads %d), TF32 %s\ndate: %s\ncommand: %s\n\n",
                args.config.c_str(), args.checkpoint.empty() ? "none (random initialisation, seed 0)" : args.checkpoint.c_str(),
                device.str().c_str(), omp_get_max_threads(),
                device.is_cuda() ? (cuda::allow_tf32() ? "on" : "off") : "n/a", date, command.c_str());
    std::fflush(stdout);

    // --image: the model inside app::Predictor (its pipeline and checkpoint loading); else one of our own.
    std::unique_ptr<app::Predictor> predictor;
    std::unique_ptr<TwoStageDetector> own_model;
    if (on_image) {
      predictor = std::make_unique<app::Predictor>(app::load_run_config(args.config, {}), args.checkpoint, device,
                                                   args.config);
    } else {
      Generator init(0);
      own_model = std::make_unique<TwoStageDetector>(load_config(args.config)["model"], init);
      if (!args.checkpoint.empty()) {
        const nn::LoadReport r =
            own_model->load_state_dict(nn::load_state_dict_from_file(args.checkpoint), /*strict=*/false);
        GNDET_CHECK(r.ok(), "model_iteration: checkpoint '", args.checkpoint, "' does not match the model of '",
                    args.config, "': ", r.str());
      }
      own_model->to(device);
    }
    TwoStageDetector& model = on_image ? predictor->model() : *own_model;
    train ? model.train() : model.eval();
    nn::SGDOptions sgd;
    sgd.lr = 0.02 * 0.001;
    nn::SGD optimizer(nn::make_param_groups(model), sgd);
    const Inputs in = make_inputs(device);
    Generator gen(7);
    const Tensor first_image = in.images.narrow(0, 0, 1).contiguous();
    const std::vector<ImageInfo> first_info{in.infos.at(0)};

    std::vector<double> times;
    std::string tensor_memory;
    int64_t detections = 0;  // infer: of the last iteration
    for (int it = 0; it < args.warmup + args.iters; ++it) {
      if (it == args.warmup && device.is_cuda()) {
        cuda::synchronize(device.index);
        cuda::reset_peak_memory_stats(device.index);
      }
      const auto start = std::chrono::steady_clock::now();
      if (!train) {
        autograd::NoGradGuard no_grad;
        const CpuCacheStats at_start = cpu_cache_stats();
        reset_cpu_peak_memory();
        const std::vector<Detections> dets =
            on_image ? std::vector<Detections>{predictor->predict(data::read_image(args.image))}
                     : model.predict(first_image, first_info);
        if (!device.is_cuda()) {
          tensor_memory = "tensor memory (MiB, live CPU tensors, last iteration): peak " +
                          fixed(mib(cpu_cache_stats().peak_allocated_bytes)) + "; " + block_reuse(at_start);
        }
        if (device.is_cuda()) cuda::synchronize(device.index);
        const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (it >= args.warmup) times.push_back(s);
        detections = dets.at(0).scores.numel();
        std::printf("iteration %d (%s): %.3f s, %lld detections\n", it + 1, it >= args.warmup ? "timed" : "warm-up", s,
                    static_cast<long long>(detections));
        if (!args.detections.empty() && it + 1 == args.warmup + args.iters) {
          write_file_atomic(args.detections, detections_json(args.image, dets.at(0)));
        }
        std::fflush(stdout);
        continue;
      }
      // Tensor memory by phase (CPU): the peak of live tensor bytes in forward, backward and step.
      const CpuCacheStats at_start = cpu_cache_stats();
      const double before = mib(at_start.allocated_bytes);
      reset_cpu_peak_memory();
      LossDict losses;
      {
        const autocast::Guard mixed_precision(args.amp);
        losses = model.loss(in.images, in.targets, in.infos, gen);
      }
      const Tensor total = total_loss(losses);
      optimizer.zero_grad();
      const CpuCacheStats after_forward = cpu_cache_stats();
      reset_cpu_peak_memory();
      total.backward();
      const double backward_peak = mib(cpu_cache_stats().peak_allocated_bytes);
      reset_cpu_peak_memory();
      optimizer.step();
      const double step_peak = mib(cpu_cache_stats().peak_allocated_bytes);
      if (!device.is_cuda()) {
        tensor_memory = "tensor memory (MiB, live CPU tensors, last iteration): before " + fixed(before) +
                        ", peak in forward " + fixed(mib(after_forward.peak_allocated_bytes)) + ", after forward " +
                        fixed(mib(after_forward.allocated_bytes)) + ", peak in backward " + fixed(backward_peak) +
                        ", peak in step " + fixed(step_peak) + "; " + block_reuse(at_start);
      }
      if (device.is_cuda()) cuda::synchronize(device.index);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const bool timed = it >= args.warmup;
      if (timed) times.push_back(s);
      std::printf("iteration %d (%s): %.3f s, loss %.4f (", it + 1, timed ? "timed" : "warm-up", s,
                  total.item<double>());
      for (size_t k = 0; k < losses.size(); ++k) {
        std::printf("%s%s %.4f", k ? ", " : "", losses[k].first.c_str(), losses[k].second.item<double>());
      }
      std::printf(")\n");
      std::fflush(stdout);
    }
    std::vector<double> sorted = times;
    std::sort(sorted.begin(), sorted.end());
    const double median = sorted.size() % 2 ? sorted[sorted.size() / 2]
                                            : 0.5 * (sorted[sorted.size() / 2 - 1] + sorted[sorted.size() / 2]);
    std::printf("\nmedian of %zu timed iterations: %.3f s/iter (min %.3f, max %.3f)\n", times.size(), median, sorted.front(),
                sorted.back());
    if (device.is_cuda()) {
      const cuda::MemoryStats m = cuda::memory_stats(device.index);
      std::printf("peak memory (CUDA caching allocator, timed iterations): allocated %.2f GiB, reserved %.2f GiB\n",
                  static_cast<double>(m.peak_allocated_bytes) / (1 << 30), static_cast<double>(m.peak_reserved_bytes) / (1 << 30));
    }
    if (!tensor_memory.empty()) std::printf("%s\n", tensor_memory.c_str());
    std::printf("peak host memory (max RSS): %.0f MiB\n", max_rss_mib());
    // One line for scripts (bench/torchvision_maskrcnn_gn.py --ours).
    std::printf("RESULT model_iteration device=%s mode=%s median_s=%.4f", device.str().c_str(), args.mode.c_str(), median);
    if (!train) std::printf(" detections=%lld", static_cast<long long>(detections));
    std::printf("\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "model_iteration: %s\n", e.what());
    return 1;
  }
}
