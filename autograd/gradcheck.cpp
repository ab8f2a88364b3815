#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "tensor/grad_mode.h"
#include "autograd/node.h"
#include "tensor/factory.h"
#include "tensor/random.h"

namespace gndet::autograd {
namespace {

std::string index_str(const Shape& shape, int64_t flat) {
  Shape idx(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    idx[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(idx);
}

// L = sum_k <y_k, r_k>, computed in double on the host.
double project(const Tensors& ys, const std::vector<std::vector<double>>& r) {
  double total = 0.0;
  for (size_t k = 0; k < ys.size(); ++k) {
    const std::vector<double> y = ys[k].to_vector<double>();
    for (size_t i = 0; i < y.size(); ++i) total += y[i] * r[k][i];
  }
  return total;
}

}  // namespace

GradcheckResult gradcheck(const SingleFn& f, const Tensors& inputs, const GradcheckOptions& opts) {
  return gradcheck_outputs([&](const Tensors& in) { return Tensors{f(in)}; }, inputs, opts);
}

namespace {
thread_local Device tl_device = kCPU;
}  // namespace

Device gradcheck_device() { return tl_device; }
GradcheckDeviceGuard::GradcheckDeviceGuard(Device device) : prev_(tl_device) { tl_device = device; }
GradcheckDeviceGuard::~GradcheckDeviceGuard() { tl_device = prev_; }

GradcheckResult gradcheck_outputs(const MultiFn& f, const Tensors& inputs, const GradcheckOptions& opts) {
  // Fresh contiguous float64 CPU leaves for every input that requires grad, so that perturbing one
  // element touches nothing else; f gets them as they are, or copied to gradcheck_device().
  const Device dev = tl_device;
  Tensors args, leaves;
  std::vector<int> leaf_of;  // args[i] is leaves[leaf_of[i]] (on the device), or -1: passed as is
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!(x.defined() && x.requires_grad())) {
      args.push_back(x.defined() && !dev.is_cpu() ? x.detach().to(dev) : x);
      leaf_of.push_back(-1);
      continue;
    }
    if (!(x.dtype() == kFloat64 && (x.device().is_cpu() || x.device() == dev))) {
      GradcheckResult res;
      res.error = "gradcheck: input " + std::to_string(i) + " must be a float64 tensor on the CPU or " + dev.str() +
                  ", got " + dtype_name(x.dtype()) + " on " + x.device().str();
      return res;
    }
    Tensor leaf;
    {
      NoGradGuard g;
      leaf = x.detach().cpu().clone();
    }
    leaf.set_requires_grad(true);
    leaf_of.push_back(static_cast<int>(leaves.size()));
    args.push_back(leaf);
    leaves.push_back(leaf);
  }
  const auto run = [&] {
    if (dev.is_cpu()) return f(args);
    Tensors on_device = args;
    for (size_t i = 0; i < args.size(); ++i) {
      if (leaf_of[i] >= 0) on_device[i] = leaves[static_cast<size_t>(leaf_of[i])].to(dev);
    }
    return f(on_device);
  };
  GradcheckResult res = gradcheck_leaves(run, leaves, opts);
  // Report positions as the caller numbers its inputs, not as the list of checked leaves does.
  if (!res.worst.empty()) {
    size_t k = 0;
    for (size_t i = 0; i < inputs.size(); ++i) {
      if (!(inputs[i].defined() && inputs[i].requires_grad())) continue;
      const std::string from = "leaf " + std::to_string(k++) + " ";
      if (res.worst.rfind(from, 0) == 0) {
        res.worst = "input " + std::to_string(i) + " " + res.worst.substr(from.size());
        break;
      }
    }
  }
  return res;
}

GradcheckResult gradcheck_leaves(const std::function<Tensors()>& f, const Tensors& leaves,
                                 const GradcheckOptions& opts) {
  GradcheckResult res;
  try {
    for (size_t i = 0; i < leaves.size(); ++i) {
      const Tensor& x = leaves[i];
      GNDET_CHECK(x.defined() && x.requires_grad() && !x.grad_fn(), "gradcheck: leaf ", i,
                  " is not a leaf tensor that requires grad");
      GNDET_CHECK(x.dtype() == kFloat64 && x.device().is_cpu() && x.is_contiguous(), "gradcheck: leaf ", i,
                  " must be a contiguous float64 CPU tensor, got ", dtype_name(x.dtype()), " on ", x.device().str());
      Tensor(x).set_grad(Tensor());
    }

    // Analytic: one backward with random output gradients.
    Tensors outs = f();
    Generator gen(opts.seed);
    std::vector<std::vector<double>> r;
    Tensors r_tensors;
    for (size_t k = 0; k < outs.size(); ++k) {
      GNDET_CHECK(outs[k].defined() && is_floating(outs[k].dtype()), "gradcheck: output ", k, " is not a floating tensor");
      GNDET_CHECK(outs[k].requires_grad(), "gradcheck: output ", k,
                  " does not require grad: the op recorded no backward for these inputs");
      Tensor rk = randn(outs[k].shape(), gen, outs[k].options());
      r.push_back(rk.to_vector<double>());
      r_tensors.push_back(rk);
    }
    run_backward(outs, r_tensors, false);
    outs.clear();

    NoGradGuard no_grad;
    std::vector<std::vector<double>> analytic;
    for (const Tensor& leaf : leaves) {
      const Tensor g = leaf.grad();
      analytic.push_back(g.defined() ? g.to_vector<double>()
                                     : std::vector<double>(static_cast<size_t>(leaf.numel()), 0.0));
    }

    // Numeric: central differences of L, element by element (or on a seeded sample of them).
    double worst_score = -1.0;
    res.passed = true;
    Generator pick(opts.seed ^ 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < leaves.size(); ++i) {
      Tensor leaf = leaves[i];
      const int64_t n = leaf.numel();
      res.total_elements += n;
      std::vector<int64_t> which;
      if (opts.max_elements_per_input > 0 && n > opts.max_elements_per_input) {
        const std::vector<int64_t> perm = randperm(n, pick).to_vector<int64_t>();
        which.assign(perm.begin(), perm.begin() + opts.max_elements_per_input);
      } else {
        for (int64_t j = 0; j < n; ++j) which.push_back(j);
      }
      double* p = leaf.data<double>();
      for (const int64_t j : which) {
        const double saved = p[j];
        p[j] = saved + opts.eps;
        const double plus = project(f(), r);
        p[j] = saved - opts.eps;
        const double minus = project(f(), r);
        p[j] = saved;
        const double numeric = (plus - minus) / (2.0 * opts.eps);
        const double a = analytic[i][static_cast<size_t>(j)];
        const double err = std::abs(a - numeric);
        const double allowed = opts.atol + opts.rtol * std::abs(numeric);
        res.max_abs_error = std::max(res.max_abs_error, err);
        res.max_rel_error = std::max(res.max_rel_error, err / std::max(std::abs(numeric), opts.atol / opts.rtol));
        ++res.elements;
        if (!(err <= allowed)) res.passed = false;  // also catches NaN
        const double score = std::isnan(err) ? INFINITY : err / allowed;
        if (score > worst_score) {
          worst_score = score;
          std::ostringstream os;
          os << "leaf " << i << " element " << index_str(leaf.shape(), j) << ": analytic " << a << ", numeric "
             << numeric;
          res.worst = os.str();
        }
      }
    }

    if (opts.directional) {
      // One random direction v ~ N(0, 1) per leaf: x_i +- eps v moves every element of leaf i at
      // once, so each leaf is checked in all its elements for two evaluations, sampled or not.
      for (size_t i = 0; i < leaves.size(); ++i) {
        const std::vector<double> v = randn(leaves[i].shape(), pick, kFloat64).to_vector<double>();
        const std::vector<double> base = leaves[i].to_vector<double>();
        double dot = 0.0;
        for (size_t j = 0; j < v.size(); ++j) dot += v[j] * analytic[i][j];
        double* p = Tensor(leaves[i]).data<double>();
        auto shift = [&](double step) {
          for (size_t j = 0; j < v.size(); ++j) p[j] = base[j] + step * v[j];
        };
        shift(opts.eps);
        const double plus = project(f(), r);
        shift(-opts.eps);
        const double minus = project(f(), r);
        for (size_t j = 0; j < v.size(); ++j) p[j] = base[j];
        const double numeric = (plus - minus) / (2.0 * opts.eps);
        const double err = std::abs(dot - numeric);
        const double allowed = opts.atol + opts.rtol * std::abs(numeric);
        ++res.directions;
        res.max_abs_error = std::max(res.max_abs_error, err);
        res.max_rel_error = std::max(res.max_rel_error, err / std::max(std::abs(numeric), opts.atol / opts.rtol));
        if (!(err <= allowed)) res.passed = false;
        const double score = std::isnan(err) ? INFINITY : err / allowed;
        if (score > worst_score) {
          worst_score = score;
          std::ostringstream os;
          os << "leaf " << i << " along a random direction: analytic " << dot << ", numeric " << numeric;
          res.worst = os.str();
        }
      }
    }
  } catch (const Error& e) {
    res.passed = false;
    res.error = e.what();
  }
  return res;
}

// ---- registry ----

static std::vector<GradcheckCase>& case_list() {
  static std::vector<GradcheckCase> cases;
  return cases;
}
const std::vector<GradcheckCase>& gradcheck_cases() { return case_list(); }
GradcheckRegistrar::GradcheckRegistrar(const char* op, const char* name, GradcheckResult (*run)()) {
  case_list().push_back({op, name, run});
}

}  // namespace gndet::autograd
