// Convolutions through cuDNN's legacy API (cudnnConvolutionForward / BackwardData /
// BackwardFilter, groups by cudnnSetConvolutionGroupCount), NCHW, float32 or float64.
//
// Algorithms: chosen once per (pass, device, dtype, geometry, switches) and cached. By default
// from cuDNN's heuristics (cudnnGet*Algorithm_v7), which cost microseconds: detection heads see a
// new RoI count nearly every iteration, and a timed search per shape would dominate. With
// cuda::cudnn_benchmark() (GNDET_CUDNN_BENCHMARK=1) cudnnFind*AlgorithmEx times the candidates
// instead. Either way the first candidate that succeeded, needs at most kMaxWorkspace bytes and
// meets the switches wins (the lists come fastest first):
//  - TF32: float32 convolutions use tensor-core TF32 math only when cuda::allow_tf32(); otherwise
//    the descriptor asks for CUDNN_FMA_MATH and only FMA algorithms are taken;
//  - cuda::cudnn_deterministic(): only algorithms cuDNN reports as deterministic.
// Workspaces come from the caching allocator, so steady-state training never calls cudaMalloc.
#include "ops/cuda/conv_cuda.h"  // gndet_config.h: the whole file needs GNDET_WITH_CUDNN

#if GNDET_WITH_CUDNN

#include <algorithm>
#include <climits>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "ops/cuda/tuning.h"
#include "tensor/cuda/context.h"
#include "tensor/factory.h"

namespace gndet::cuda {
namespace {

constexpr size_t kMaxWorkspace = size_t{1} << 30;  // 1 GiB: a hungrier algorithm is passed over

enum class Pass : int { Forward, BackwardData, BackwardFilter };

struct ConvKey {
  int pass, device, dtype, tf32, deterministic, benchmark;
  int64_t dims[18];  // x (4), w (4), y (4), pad (2), stride (2), dilation (2)... and groups below
  int64_t groups;

  bool operator==(const ConvKey& o) const {
    return pass == o.pass && device == o.device && dtype == o.dtype && tf32 == o.tf32 &&
           deterministic == o.deterministic && benchmark == o.benchmark && groups == o.groups &&
           std::memcmp(dims, o.dims, sizeof(dims)) == 0;
  }
};

struct ConvKeyHash {
  size_t operator()(const ConvKey& k) const {
    uint64_t h = 1469598103934665603ull;  // FNV-1a over the fields (not the padding)
    auto mix = [&h](int64_t v) {
      h ^= static_cast<uint64_t>(v);
      h *= 1099511628211ull;
    };
    for (const int v : {k.pass, k.device, k.dtype, k.tf32, k.deterministic, k.benchmark}) mix(v);
    for (const int64_t v : k.dims) mix(v);
    mix(k.groups);
    return static_cast<size_t>(h);
  }
};

struct Choice {
  int algo = -1;  // -1: no usable algorithm (cached too, so that a refusal costs one lookup)
  size_t workspace = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

std::mutex g_cache_mu;
std::unordered_map<ConvKey, Choice, ConvKeyHash> g_cache;

// The descriptors of one call; x is the convolution's input, y its output, whatever the pass.
struct Descriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  ~Descriptors() {  // destruction errors are ignored: nothing useful could be done with them
    if (x != nullptr) cudnnDestroyTensorDescriptor(x);
    if (y != nullptr) cudnnDestroyTensorDescriptor(y);
    if (w != nullptr) cudnnDestroyFilterDescriptor(w);
    if (conv != nullptr) cudnnDestroyConvolutionDescriptor(conv);
  }
};

bool fits_int(const Shape& s) {
  int64_t n = 1;
  for (const int64_t v : s) {
    if (v <= 0 || v > INT_MAX) return false;
    n *= v;
    if (n > INT_MAX) return false;  // cuDNN's legacy descriptors index with int
  }
  return true;
}

int i32(int64_t v) { return static_cast<int>(v); }

// Fills `d` for y = conv(x, w); false when cuDNN cannot describe it or disagrees on y's size.
bool describe(Descriptors& d, const Shape& xs, const Shape& ws, const Shape& ys, const Conv2dParams& p, DType dt,
              cudnnMathType_t math) {
  if (!fits_int(xs) || !fits_int(ws) || !fits_int(ys)) return false;
  for (const int64_t v : {p.padding[0], p.padding[1], p.stride[0], p.stride[1], p.dilation[0], p.dilation[1], p.groups}) {
    if (v > INT_MAX) return false;
  }
  // 16-bit data with a float32 convolution type: cuDNN's "pseudo half" configurations, which
  // accumulate in float32 (autocast's contract, ops/autocast.h).
  const cudnnDataType_t t = dt == kFloat64    ? CUDNN_DATA_DOUBLE
                            : dt == kBFloat16 ? CUDNN_DATA_BFLOAT16
                            : dt == kFloat16  ? CUDNN_DATA_HALF
                                              : CUDNN_DATA_FLOAT;
  const cudnnDataType_t compute = dt == kFloat64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
  auto ok = [](cudnnStatus_t s) { return s == CUDNN_STATUS_SUCCESS; };
  if (!ok(cudnnCreateTensorDescriptor(&d.x)) || !ok(cudnnCreateTensorDescriptor(&d.y)) ||
      !ok(cudnnCreateFilterDescriptor(&d.w)) || !ok(cudnnCreateConvolutionDescriptor(&d.conv))) {
    GNDET_FAIL("conv2d: cuDNN could not create descriptors (out of host memory?)");
  }
  if (!ok(cudnnSetTensor4dDescriptor(d.x, CUDNN_TENSOR_NCHW, t, i32(xs[0]), i32(xs[1]), i32(xs[2]), i32(xs[3]))) ||
      !ok(cudnnSetTensor4dDescriptor(d.y, CUDNN_TENSOR_NCHW, t, i32(ys[0]), i32(ys[1]), i32(ys[2]), i32(ys[3]))) ||
      !ok(cudnnSetFilter4dDescriptor(d.w, t, CUDNN_TENSOR_NCHW, i32(ws[0]), i32(ws[1]), i32(ws[2]), i32(ws[3]))) ||
      !ok(cudnnSetConvolution2dDescriptor(d.conv, i32(p.padding[0]), i32(p.padding[1]), i32(p.stride[0]),
                                          i32(p.stride[1]), i32(p.dilation[0]), i32(p.dilation[1]),
                                          CUDNN_CROSS_CORRELATION, compute)) ||
      !ok(cudnnSetConvolutionGroupCount(d.conv, i32(p.groups))) || !ok(cudnnSetConvolutionMathType(d.conv, math))) {
    return false;
  }
  int n = 0, c = 0, h = 0, w = 0;
  if (!ok(cudnnGetConvolution2dForwardOutputDim(d.conv, d.x, d.w, &n, &c, &h, &w))) return false;
  return n == ys[0] && c == ys[1] && h == ys[2] && w == ys[3];
}

ConvKey make_key(Pass pass, int device, DType dt, const Shape& xs, const Shape& ws, const Shape& ys,
                 const Conv2dParams& p) {
  ConvKey k{};
  k.pass = static_cast<int>(pass);
  k.device = device;
  k.dtype = static_cast<int>(dt);
  k.tf32 = dt == kFloat32 && allow_tf32();
  k.deterministic = cudnn_deterministic();
  k.benchmark = cudnn_benchmark();
  for (int i = 0; i < 4; ++i) {
    k.dims[i] = xs[i];
    k.dims[4 + i] = ws[i];
    k.dims[8 + i] = ys[i];
  }
  for (int i = 0; i < 2; ++i) {
    k.dims[12 + i] = p.padding[i];
    k.dims[14 + i] = p.stride[i];
    k.dims[16 + i] = p.dilation[i];
  }
  k.groups = p.groups;
  return k;
}

// The first usable entry of a perf list (sorted best first by cuDNN).
template <class Perf>
bool pick(const Perf* perf, int n, const ConvKey& key, size_t limit, Choice* out) {
  for (int i = 0; i < n; ++i) {
    const Perf& q = perf[i];
    if (q.status != CUDNN_STATUS_SUCCESS || q.memory > limit) continue;
    if (key.deterministic && q.determinism != CUDNN_DETERMINISTIC) continue;
    if (key.dtype == static_cast<int>(kFloat32)) {
      if (!key.tf32 && q.mathType != CUDNN_FMA_MATH) continue;
      // ALLOW_CONVERSION may round float32 operands to FP16: coarser than TF32, never wanted.
      if (q.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) continue;
    }
    *out = {static_cast<int>(q.algo), q.memory, q.mathType};
    return true;
  }
  return false;
}

// Largest workspace among the usable heuristic candidates: what a timed search gets to use.
template <class Perf>
size_t search_workspace(const Perf* perf, int n, const ConvKey& key) {
  size_t m = 0;
  for (int i = 0; i < n; ++i) {
    Choice c;
    if (pick(perf + i, 1, key, kMaxWorkspace, &c)) m = std::max(m, c.workspace);
  }
  return m;
}

Tensor workspace(size_t bytes, Device device) {
  return bytes > 0 ? empty({static_cast<int64_t>(bytes)}, TensorOptions(kUInt8, device)) : Tensor();
}

void* ptr(const Tensor& t) { return t.defined() ? t.raw_data() : nullptr; }

bool aligned16(const Tensor& t) { return reinterpret_cast<uintptr_t>(t.raw_data()) % 16 == 0; }

// Inputs with an offset that breaks 16-byte alignment are copied (cuDNN's vectorised kernels
// assume it); outputs are not (the caller then takes the GEMM path).
Tensor aligned_input(const Tensor& t) { return aligned16(t) ? t : t.clone(); }

// One pass: describe, choose (cached), run. `find` and `run` receive (descriptors, choice,
// workspace pointer, workspace bytes); `get`/`find` fill a perf list.
template <class Perf, class Count, class Get, class Find, class Run>
bool run_pass(Pass pass, const Tensor& out, const Shape& xs, const Shape& ws, const Shape& ys, const Conv2dParams& p,
              Count count_fn, Get get_fn, Find find_fn, Run run_fn) {
  const DType dt = out.dtype();
  if (!aligned16(out)) return false;
  const int device = out.device().index;
  const ConvKey key = make_key(pass, device, dt, xs, ws, ys, p);
  const cudnnMathType_t base_math = key.dtype == static_cast<int>(kFloat32) && !key.tf32 ? CUDNN_FMA_MATH
                                    : is_reduced_float(dt)                              ? CUDNN_TENSOR_OP_MATH
                                                                                        : CUDNN_DEFAULT_MATH;
  Descriptors d;
  if (!describe(d, xs, ws, ys, p, dt, base_math)) return false;
  DeviceGuard guard(device);
  CudnnLease lease(device);
  Choice choice;
  bool known = false;
  {
    std::lock_guard<std::mutex> lock(g_cache_mu);
    auto it = g_cache.find(key);
    if (it != g_cache.end()) {
      choice = it->second;
      known = true;
    }
  }
  if (!known) {
    int max_count = 0;
    GNDET_CUDNN_CHECK(count_fn(lease.get(), &max_count));
    std::vector<Perf> perf(static_cast<size_t>(std::max(max_count, 1)));
    int returned = 0;
    GNDET_CUDNN_CHECK(get_fn(lease.get(), d, max_count, &returned, perf.data()));
    bool found = pick(perf.data(), returned, key, kMaxWorkspace, &choice);
    if (found && key.benchmark) {
      const size_t bytes = search_workspace(perf.data(), returned, key);
      const Tensor space = workspace(bytes, out.device());
      GNDET_CUDNN_CHECK(find_fn(lease.get(), d, max_count, &returned, perf.data(), ptr(space), bytes));
      found = pick(perf.data(), returned, key, bytes, &choice);
    }
    if (!found) choice = Choice{};
    std::lock_guard<std::mutex> lock(g_cache_mu);
    g_cache[key] = choice;
  }
  if (choice.algo < 0) return false;
  GNDET_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv, choice.math));
  const Tensor space = workspace(choice.workspace, out.device());
  run_fn(lease.get(), d, choice, ptr(space), choice.workspace);
  return true;
}

struct Scalars {
  float f1 = 1.0f, f0 = 0.0f;
  double d1 = 1.0, d0 = 0.0;
  const void* one(DType dt) const { return dt == kFloat64 ? static_cast<const void*>(&d1) : &f1; }
  const void* zero(DType dt) const { return dt == kFloat64 ? static_cast<const void*>(&d0) : &f0; }
};

}  // namespace

bool cudnn_conv_forward(const Tensor& y, const Tensor& x_in, const Tensor& w_in, const Conv2dParams& p) {
  const Tensor x = aligned_input(x_in), w = aligned_input(w_in);
  const Scalars s;
  const DType dt = y.dtype();
  return run_pass<cudnnConvolutionFwdAlgoPerf_t>(
      Pass::Forward, y, x.shape(), w.shape(), y.shape(), p, cudnnGetConvolutionForwardAlgorithmMaxCount,
      [&](cudnnHandle_t h, const Descriptors& d, int n, int* got, cudnnConvolutionFwdAlgoPerf_t* perf) {
        return cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, n, got, perf);
      },
      [&](cudnnHandle_t h, const Descriptors& d, int n, int* got, cudnnConvolutionFwdAlgoPerf_t* perf, void* ws,
          size_t bytes) {
        return cudnnFindConvolutionForwardAlgorithmEx(h, d.x, x.raw_data(), d.w, w.raw_data(), d.conv, d.y,
                                                      y.raw_data(), n, got, perf, ws, bytes);
      },
      [&](cudnnHandle_t h, const Descriptors& d, const Choice& c, void* ws, size_t bytes) {
        GNDET_CUDNN_CHECK(cudnnConvolutionForward(h, s.one(dt), d.x, x.raw_data(), d.w, w.raw_data(), d.conv,
                                                  static_cast<cudnnConvolutionFwdAlgo_t>(c.algo), ws, bytes,
                                                  s.zero(dt), d.y, y.raw_data()));
      });
}

bool cudnn_conv_backward_input(const Tensor& dx, const Tensor& dy_in, const Tensor& w_in, const Conv2dParams& p) {
  const Tensor dy = aligned_input(dy_in), w = aligned_input(w_in);
  const Scalars s;
  const DType dt = dx.dtype();
  return run_pass<cudnnConvolutionBwdDataAlgoPerf_t>(
      Pass::BackwardData, dx, dx.shape(), w.shape(), dy.shape(), p, cudnnGetConvolutionBackwardDataAlgorithmMaxCount,
      [&](cudnnHandle_t h, const Descriptors& d, int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* perf) {
        return cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x, n, got, perf);
      },
      [&](cudnnHandle_t h, const Descriptors& d, int n, int* got, cudnnConvolutionBwdDataAlgoPerf_t* perf, void* ws,
          size_t bytes) {
        return cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w, w.raw_data(), d.y, dy.raw_data(), d.conv, d.x,
                                                           dx.raw_data(), n, got, perf, ws, bytes);
      },
      [&](cudnnHandle_t h, const Descriptors& d, const Choice& c, void* ws, size_t bytes) {
        GNDET_CUDNN_CHECK(cudnnConvolutionBackwardData(h, s.one(dt), d.w, w.raw_data(), d.y, dy.raw_data(), d.conv,
                                                       static_cast<cudnnConvolutionBwdDataAlgo_t>(c.algo), ws, bytes,
                                                       s.zero(dt), d.x, dx.raw_data()));
      });
}

bool cudnn_conv_backward_weight(const Tensor& dw, const Tensor& dy_in, const Tensor& x_in, const Conv2dParams& p) {
  const Tensor dy = aligned_input(dy_in), x = aligned_input(x_in);
  const Scalars s;
  const DType dt = dw.dtype();
  return run_pass<cudnnConvolutionBwdFilterAlgoPerf_t>(
      Pass::BackwardFilter, dw, x.shape(), dw.shape(), dy.shape(), p,
      cudnnGetConvolutionBackwardFilterAlgorithmMaxCount,
      [&](cudnnHandle_t h, const Descriptors& d, int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* perf) {
        return cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w, n, got, perf);
      },
      [&](cudnnHandle_t h, const Descriptors& d, int n, int* got, cudnnConvolutionBwdFilterAlgoPerf_t* perf,
          void* ws, size_t bytes) {
        return cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x, x.raw_data(), d.y, dy.raw_data(), d.conv, d.w,
                                                             dw.raw_data(), n, got, perf, ws, bytes);
      },
      [&](cudnnHandle_t h, const Descriptors& d, const Choice& c, void* ws, size_t bytes) {
        GNDET_CUDNN_CHECK(cudnnConvolutionBackwardFilter(h, s.one(dt), d.x, x.raw_data(), d.y, dy.raw_data(), d.conv,
                                                         static_cast<cudnnConvolutionBwdFilterAlgo_t>(c.algo), ws,
                                                         bytes, s.zero(dt), d.w, dw.raw_data()));
      });
}

}  // namespace gndet::cuda

#endif  // GNDET_WITH_CUDNN
