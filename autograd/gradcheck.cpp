#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/grad_mode.h"
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

GradcheckResult gradcheck_outputs(const MultiFn& f, const Tensors& inputs, const GradcheckOptions& opts) {
  GradcheckResult res;
  try {
    // Fresh contiguous float64 leaves for every input that requires grad, so that perturbing one
    // element touches nothing else.
    Tensors leaves;
    std::vector<bool> checked;
    for (size_t i = 0; i < inputs.size(); ++i) {
      const Tensor& x = inputs[i];
      const bool check = x.defined() && x.requires_grad();
      if (check) {
        GNDET_CHECK(x.dtype() == kFloat64 && x.device().is_cpu(), "gradcheck: input ", i,
                    " must be a float64 CPU tensor, got ", dtype_name(x.dtype()), " on ", x.device().str());
        Tensor leaf;
        {
          NoGradGuard g;
          leaf = x.detach().clone();
        }
        leaf.set_requires_grad(true);
        leaves.push_back(leaf);
      } else {
        leaves.push_back(x);
      }
      checked.push_back(check);
    }

    // Analytic: one backward with random output gradients.
    Tensors outs = f(leaves);
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

    // Numeric: central differences of L, element by element.
    NoGradGuard no_grad;
    double worst_score = -1.0;
    res.passed = true;
    for (size_t i = 0; i < leaves.size(); ++i) {
      if (!checked[i]) continue;
      Tensor leaf = leaves[i];
      const Tensor g = leaf.grad();
      const std::vector<double> analytic =
          g.defined() ? g.to_vector<double>() : std::vector<double>(static_cast<size_t>(leaf.numel()), 0.0);
      double* p = leaf.data<double>();
      for (int64_t j = 0; j < leaf.numel(); ++j) {
        const double saved = p[j];
        p[j] = saved + opts.eps;
        const double plus = project(f(leaves), r);
        p[j] = saved - opts.eps;
        const double minus = project(f(leaves), r);
        p[j] = saved;
        const double numeric = (plus - minus) / (2.0 * opts.eps);
        const double a = analytic[static_cast<size_t>(j)];
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
          os << "input " << i << " element " << index_str(leaf.shape(), j) << ": analytic " << a << ", numeric "
             << numeric;
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
