// Autograd from Python: Functions written in Python joining the C++ graph, gradcheck with its
// report, the registry of differentiable ops and the profiler.
#include <nanobind/stl/function.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <iomanip>
#include <sstream>

#include "python/src/bindings.h"
#include "autograd/function.h"
#include "autograd/gradcheck.h"
#include "autograd/profiler.h"

namespace gndet::py {
namespace {

GNDET_OP(kPythonFunction, "python_function");

// A Python object owned from C++ code that may drop it on any thread, even at interpreter exit.
struct PyRef {
  explicit PyRef(nb::object o) : obj(new nb::object(std::move(o))) {}
  ~PyRef() {
    if (nb::detail::cleanup_guard guard{}) delete obj;
  }
  PyRef(const PyRef&) = delete;
  PyRef& operator=(const PyRef&) = delete;
  nb::object* obj;
};

// Records a Python Function's node: `backward(*grads)` (None where no gradient arrived) must return
// one gradient (or None) per input. Its errors come back as gndet.Error naming the Function.
void record_function(const std::string& name, const Tensors& inputs, const Tensors& outputs, nb::object backward) {
  auto fn = std::make_shared<PyRef>(std::move(backward));
  const size_t n_inputs = inputs.size();
  autograd::record(kPythonFunction, inputs, outputs, [fn, name, n_inputs](const Tensors& grads) {
    nb::gil_scoped_acquire gil;
    Tensors out;
    try {
      nb::list args;
      for (const Tensor& g : grads) args.append(g.defined() ? nb::cast(g) : nb::none());
      nb::object r = (*fn->obj)(*args);
      nb::list results;
      if (nb::isinstance<nb::tuple>(r) || nb::isinstance<nb::list>(r)) {
        for (nb::handle h : r) results.append(h);
      } else {
        results.append(r);
      }
      GNDET_CHECK(results.size() == n_inputs, name, ".backward returned ", results.size(), " gradients for ", n_inputs,
                  " inputs");
      for (nb::handle h : results) {
        if (h.is_none()) {
          out.emplace_back();
        } else if (nb::isinstance<Tensor>(h)) {
          out.push_back(nb::cast<Tensor>(h));
        } else {
          GNDET_FAIL(name, ".backward returned a ", nb::inst_name(h).c_str(), " where a Tensor or None belongs");
        }
      }
    } catch (nb::python_error& e) {
      GNDET_FAIL(name, ".backward raised ", e.what());
    }
    return out;
  });
}

// f(*inputs) -> Tensor or tuple of Tensors, for autograd::gradcheck_outputs.
autograd::MultiFn python_fn(nb::callable f) {
  return [f](const Tensors& inputs) {
    nb::list args;
    for (const Tensor& t : inputs) args.append(nb::cast(t));
    nb::object r = f(*args);
    Tensors out;
    if (nb::isinstance<Tensor>(r)) {
      out.push_back(nb::cast<Tensor>(r));
    } else {
      for (nb::handle h : r) out.push_back(nb::cast<Tensor>(h));
    }
    return out;
  };
}

}  // namespace

void bind_autograd(nb::module_& m) {
  m.def("_record_function", &record_function, nb::arg("name"), nb::arg("inputs"), nb::arg("outputs"),
        nb::arg("backward"));
  m.def("registered_ops", [] {
        std::vector<std::string> names;
        for (const auto* op : autograd::registered_ops()) names.emplace_back(op->name);
        return names;
      }, "names of the differentiable ops the library registers (autograd::OpDef)");

  nb::class_<autograd::GradcheckResult>(m, "GradcheckResult", "what gradcheck found")
      .def_ro("passed", &autograd::GradcheckResult::passed)
      .def_ro("max_abs_error", &autograd::GradcheckResult::max_abs_error, "max |analytic - numeric|")
      .def_ro("max_rel_error", &autograd::GradcheckResult::max_rel_error)
      .def_ro("elements", &autograd::GradcheckResult::elements, "input elements checked")
      .def_ro("worst", &autograd::GradcheckResult::worst, "where the worst element is, analytic vs numeric")
      .def_ro("error", &autograd::GradcheckResult::error, "why the check could not run ('' when it ran)")
      .def("__bool__", [](const autograd::GradcheckResult& r) { return r.passed; })
      .def("__repr__", [](const autograd::GradcheckResult& r) {
        if (!r.error.empty()) return "GradcheckResult(FAILED: " + r.error + ")";
        std::ostringstream os;
        os << "GradcheckResult(" << (r.passed ? "passed" : "FAILED") << ", " << r.elements << " elements, max abs error "
           << std::setprecision(3) << r.max_abs_error << ", worst: " << r.worst << ")";
        return os.str();
      });
  m.def("_gradcheck", [](nb::callable f, const Tensors& inputs, double eps, double atol, double rtol, uint64_t seed) {
        autograd::GradcheckOptions o;
        o.eps = eps, o.atol = atol, o.rtol = rtol, o.seed = seed;
        return autograd::gradcheck_outputs(python_fn(std::move(f)), inputs, o);
      }, nb::arg("fn"), nb::arg("inputs"), nb::arg("eps"), nb::arg("atol"), nb::arg("rtol"), nb::arg("seed"));

  namespace prof = autograd::profiler;
  nb::class_<prof::Profiler>(m, "_Profiler")
      .def(nb::init<bool>(), nb::arg("sync_cuda") = true)
      .def("step_begin", &prof::Profiler::step_begin)
      .def("step_end", &prof::Profiler::step_end)
      .def("table", [](const prof::Profiler& p, int top) { return prof::summary_table(p.ranges(), top); },
           nb::arg("top") = 30)
      .def("chrome_trace", [](const prof::Profiler& p) { return prof::chrome_trace_json(p.ranges()); })
      .def("ranges", [](const prof::Profiler& p) {
        nb::list out;
        static const char* kinds[] = {"kernel", "backward", "module", "step"};
        for (const prof::Range& r : p.ranges()) {
          nb::dict d;
          d["name"] = r.name, d["scope"] = r.scope, d["kind"] = kinds[static_cast<int>(r.kind)];
          d["phase"] = r.phase == prof::Phase::kForward ? "forward" : "backward";
          d["total_ms"] = r.total_ns * 1e-6, d["self_ms"] = r.self_ns * 1e-6, d["bytes"] = r.bytes, d["flops"] = r.flops;
          out.append(d);
        }
        return out;
      });
}

}  // namespace gndet::py
