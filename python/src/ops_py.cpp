// gndet.ops, generated from op_table.h: each row binds its C++ function through OpBinder, which
// gives tensors that may be None a pointer parameter on the Python side and turns (values,
// indices) pairs into tuples. Nothing here is written op by op except the adapters below.
#include <nanobind/stl/array.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/variant.h>
#include <nanobind/stl/vector.h>

#include "python/src/bindings.h"
#include "python/src/op_table.h"
#include "ops/box_iou.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/linalg.h"
#include "ops/linear.h"
#include "ops/loss.h"
#include "ops/nms.h"
#include "ops/norm.h"
#include "ops/paste_masks.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/resize.h"
#include "ops/roi_align.h"
#include "ops/softmax.h"
#include "ops/sort.h"

namespace gndet::py {
namespace {

// How a C++ parameter type crosses from Python.
template <class T>
struct PyParam {
  using type = T;
  static T from(type v) { return v; }
};
template <>
struct PyParam<const Tensor&> {  // None (where the row allows it) -> an undefined Tensor
  using type = const Tensor*;
  static Tensor from(const Tensor* t) { return t ? *t : Tensor(); }
};

template <>
struct PyParam<Pair> {  // an int means the same for height and width, as in PyTorch
  using type = std::variant<int64_t, Pair>;
  static Pair from(const type& v) {
    if (const int64_t* i = std::get_if<int64_t>(&v)) return {*i, *i};
    return std::get<Pair>(v);
  }
};

// How a C++ result crosses back.
template <class R>
struct PyResult {
  static R to(R r) { return r; }
};
template <>
struct PyResult<ValuesIndices> {
  static std::pair<Tensor, Tensor> to(const ValuesIndices& r) { return {r.values, r.indices}; }
};

template <class Signature>
struct OpBinder;
template <class R, class... A>
struct OpBinder<R(A...)> {
  template <R (*Fn)(A...), class... Extra>
  static void def(nb::module_& m, const char* name, const char* doc, Extra&&... extra) {
    m.def(name, [](typename PyParam<A>::type... a) { return PyResult<R>::to(Fn(PyParam<A>::from(a)...)); },
          std::forward<Extra>(extra)..., doc);
  }
};

auto arg(const char* name) { return nb::arg(name); }
auto opt(const char* name) { return nb::arg(name).none() = nb::none(); }

Reduction parse_reduction(const std::string& s) {
  if (s == "mean") return Reduction::Mean;
  if (s == "sum") return Reduction::Sum;
  if (s == "none") return Reduction::None;
  throw nb::value_error(("reduction must be 'mean', 'sum' or 'none', got '" + s + "'").c_str());
}

}  // namespace

// The C++ ops whose parameters Python spells differently (structs, enums by name).
namespace adapt {
Tensor conv_ws2d(const Tensor& x, const Tensor& w, const Tensor& b, Pair stride, Pair padding, Pair dilation,
                 int64_t groups, double eps) {
  return conv2d(x, weight_standardization(w, eps), b, stride, padding, dilation, groups);
}
Tensor roi_align(const Tensor& x, const Tensor& rois, int64_t out_h, int64_t out_w, double spatial_scale,
                 int64_t sampling_ratio, bool aligned) {
  return gndet::roi_align(x, rois, RoIAlignParams{out_h, out_w, spatial_scale, sampling_ratio, aligned});
}
Tensor box_iou(const Tensor& a, const Tensor& b, const std::string& mode) {
  if (mode != "iou" && mode != "iof") throw nb::value_error(("mode must be 'iou' or 'iof', got '" + mode + "'").c_str());
  return gndet::box_iou(a, b, mode == "iou" ? OverlapMode::IoU : OverlapMode::IoF);
}
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const Tensor& class_weight, int64_t ignore_index,
                     const std::string& reduction) {
  return gndet::cross_entropy(logits, target, class_weight, ignore_index, parse_reduction(reduction));
}
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& weight,
                                        const std::string& reduction) {
  return gndet::binary_cross_entropy_with_logits(logits, target, weight, parse_reduction(reduction));
}
Tensor l1_loss(const Tensor& pred, const Tensor& target, const std::string& reduction) {
  return gndet::l1_loss(pred, target, parse_reduction(reduction));
}
Tensor smooth_l1_loss(const Tensor& pred, const Tensor& target, double beta, const std::string& reduction) {
  return gndet::smooth_l1_loss(pred, target, beta, parse_reduction(reduction));
}
}  // namespace adapt

#define GNDET_UNPAREN(...) __VA_ARGS__
#define GNDET_BIND_ROW(ns, name, ret, params, args, doc) \
  OpBinder<ret params>::def<&ns::name>(ops, #name, doc, GNDET_UNPAREN args);
#define GNDET_BIND_OP(name, ret, params, args, doc) GNDET_BIND_ROW(gndet, name, ret, params, args, doc)
#define GNDET_BIND_ADAPTED(name, ret, params, args, doc) GNDET_BIND_ROW(adapt, name, ret, params, args, doc)

void bind_ops(nb::module_& m) {
  nb::module_ ops = m.def_submodule("ops", "gndet's ops as functions (differentiable where the C++ op is)");
  GNDET_TENSOR_BINARY_OPS(GNDET_BIND_OP)
  GNDET_TENSOR_UNARY_OPS(GNDET_BIND_OP)
  GNDET_TENSOR_SHAPE_OPS(GNDET_BIND_OP)
  GNDET_TENSOR_REDUCE_OPS(GNDET_BIND_OP)
  GNDET_NN_OPS(GNDET_BIND_OP)
  GNDET_ADAPTED_OPS(GNDET_BIND_ADAPTED)
}

}  // namespace gndet::py
