// gndet.Tensor: the C++ Tensor handle itself (a Python object holds a copy of the handle, so
// both sides see one storage and one autograd identity), its numpy and DLPack exchange, operators,
// indexing, factories and grad mode. PyTorch's names wherever PyTorch has one.
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <sstream>

#include "python/src/bindings.h"
#include "autograd/node.h"
#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/grad_mode.h"
#include "tensor/random.h"

namespace gndet::py {
namespace {

struct DTypeName {
  DType dtype;
  const char* name;
  nb::dlpack::dtype dl;
};
constexpr uint8_t kDlFloat = static_cast<uint8_t>(nb::dlpack::dtype_code::Float);
constexpr uint8_t kDlInt = static_cast<uint8_t>(nb::dlpack::dtype_code::Int);
constexpr uint8_t kDlUInt = static_cast<uint8_t>(nb::dlpack::dtype_code::UInt);
constexpr uint8_t kDlBool = static_cast<uint8_t>(nb::dlpack::dtype_code::Bool);
constexpr uint8_t kDlBfloat = static_cast<uint8_t>(nb::dlpack::dtype_code::Bfloat);
const DTypeName kDTypes[] = {
    {kFloat32, "float32", {kDlFloat, 32, 1}}, {kFloat64, "float64", {kDlFloat, 64, 1}},
    {kInt64, "int64", {kDlInt, 64, 1}},       {kInt32, "int32", {kDlInt, 32, 1}},
    {kUInt8, "uint8", {kDlUInt, 8, 1}},       {kBool, "bool", {kDlBool, 8, 1}},
    {kBFloat16, "bfloat16", {kDlBfloat, 16, 1}}, {kFloat16, "float16", {kDlFloat, 16, 1}},
};

nb::dlpack::dtype dl_dtype(DType t) {
  for (const auto& d : kDTypes) {
    if (d.dtype == t) return d.dl;
  }
  throw nb::type_error("unknown dtype");
}

// The tensor as a DLPack-exchangeable nanobind array of the given framework, sharing memory:
// the owner capsule holds the storage alive.
template <class Framework>
nb::object export_array(const Tensor& t) {
  const Device dev = t.device();
  std::vector<size_t> shape(t.shape().begin(), t.shape().end());
  nb::capsule owner(new std::shared_ptr<Storage>(t.storage()),
                    [](void* p) noexcept { delete static_cast<std::shared_ptr<Storage>*>(p); });
  nb::ndarray<Framework> array(t.raw_data(), shape.size(), shape.data(), owner, t.strides().data(), dl_dtype(t.dtype()),
                               dev.is_cuda() ? nb::device::cuda::value : nb::device::cpu::value, dev.index);
  return array.cast();
}

void check_exportable(const Tensor& t, const char* what) {
  if (t.requires_grad() && autograd::grad_enabled()) {
    throw nb::type_error((std::string(what) + ": the tensor requires grad; use t.detach()." + what + "()").c_str());
  }
}

// A storage over memory owned by a Python object (a numpy array, a DLPack producer), which the
// storage's deleter releases, taking the GIL, when the last tensor on it goes.
Tensor wrap_external(const nb::ndarray<>& a, const char* what) {
  DType dtype = kFloat32;
  bool known = false;
  for (const auto& d : kDTypes) {
    if (d.dl == a.dtype()) dtype = d.dtype, known = true;
  }
  if (!known) throw nb::type_error((std::string(what) + ": gndet has no tensors of this array's dtype").c_str());
  Device device = kCPU;
  if (a.device_type() == nb::device::cuda::value) {
    device = Device::cuda(a.device_id());
  } else if (a.device_type() != nb::device::cpu::value) {
    throw nb::type_error((std::string(what) + ": the array lives on a device gndet has no backend for").c_str());
  }
  Shape sizes(a.ndim()), strides(a.ndim());
  int64_t extent = 1, numel = 1;
  for (size_t i = 0; i < a.ndim(); ++i) {
    sizes[i] = static_cast<int64_t>(a.shape(i));
    strides[i] = a.stride(i);
    numel *= sizes[i];
    if (strides[i] < 0) {
      throw nb::value_error((std::string(what) + ": negative strides (a reversed view) cannot be shared; "
                             "copy it first (numpy.ascontiguousarray)").c_str());
    }
    if (sizes[i] > 0) extent += (sizes[i] - 1) * strides[i];
  }
  const size_t nbytes = numel == 0 ? 0 : static_cast<size_t>(extent) * itemsize(dtype);
  auto* keep = new nb::ndarray<>(a);
  auto storage = std::make_shared<Storage>(const_cast<void*>(a.data()), nbytes, device, [keep](void*) {
    if (nb::detail::cleanup_guard guard{}) delete keep;  // at interpreter exit: leaked, not crashed
  });
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->sizes = std::move(sizes);
  impl->strides = std::move(strides);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

// t[key]: integers select, slices narrow (positive steps), None adds a dim, ... skips dims, and a
// 1-D int64 tensor picks rows along its dim (index_select), all in one tuple as numpy does.
Tensor index(const Tensor& t, nb::handle key) {
  std::vector<nb::handle> keys;
  if (nb::isinstance<nb::tuple>(key)) {
    for (nb::handle k : nb::borrow<nb::tuple>(key)) keys.push_back(k);
  } else {
    keys.push_back(key);
  }
  int64_t remaining = 0;  // indices still to come that each take one dim of the tensor
  for (nb::handle k : keys) remaining += (k.is_none() || k.ptr() == Py_Ellipsis) ? 0 : 1;
  Tensor out = t;
  int64_t dim = 0;
  for (nb::handle k : keys) {
    if (k.ptr() == Py_Ellipsis) {
      dim = std::max(dim, out.dim() - remaining);
      continue;
    }
    if (k.is_none()) {
      out = out.unsqueeze(dim++);
      continue;
    }
    --remaining;
    if (dim >= out.dim()) throw nb::index_error("too many indices for the tensor");
    if (nb::isinstance<nb::int_>(k)) {
      int64_t i = nb::cast<int64_t>(k);
      const int64_t n = out.size(dim);
      if (i < -n || i >= n) throw nb::index_error(("index " + std::to_string(i) + " is out of range for size " +
                                                   std::to_string(n)).c_str());
      out = out.select(dim, i < 0 ? i + n : i);
    } else if (nb::isinstance<nb::slice>(k)) {
      const auto [start, stop, step, length] = nb::borrow<nb::slice>(k).compute(out.size(dim));
      if (step <= 0) throw nb::value_error("slices with a negative or zero step are not supported");
      out = out.slice(dim, static_cast<int64_t>(start), static_cast<int64_t>(start + step * length),
                      static_cast<int64_t>(step))
                .narrow(dim, 0, static_cast<int64_t>(length));
      ++dim;
    } else if (nb::isinstance<Tensor>(k)) {
      const Tensor& idx = nb::cast<const Tensor&>(k);
      if (idx.dim() != 1 || idx.dtype() != kInt64) throw nb::index_error("a tensor index must be 1-D int64");
      out = index_select(out, dim++, idx);
    } else {
      throw nb::type_error("indices must be integers, slices, None, ... or 1-D int64 tensors");
    }
  }
  return out;
}

std::string repr(const Tensor& t) {
  std::ostringstream os;
  os << t;  // "tensor([...], shape=(...), dtype=...)"
  std::string s = os.str();
  if (!t.defined() || s.empty() || s.back() != ')') return s;
  s.pop_back();
  if (t.grad_fn()) s += std::string(", grad_fn=<") + t.grad_fn()->name() + ">";
  else if (t.requires_grad()) s += ", requires_grad=True";
  return s + ")";
}

// t.reshape(2, 3) and t.reshape((2, 3)) alike, as in PyTorch.
Shape sizes_arg(const nb::args& args) {
  nb::object seq = args.size() == 1 && !nb::isinstance<nb::int_>(args[0]) ? nb::object(args[0]) : nb::object(args);
  return nb::cast<Shape>(seq);
}

Tensor make_like(const Tensor& like, double v) { return full({}, v, like.options()); }

}  // namespace

DType parse_dtype(const std::string& name) {
  for (const auto& d : kDTypes) {
    if (name == d.name) return d.dtype;
  }
  throw nb::value_error(("unknown dtype '" + name +
                         "': float32, float64, int64, int32, uint8, bool, bfloat16 or float16").c_str());
}

Device parse_device(const std::string& name) { return Device::parse(name); }

nb::object to_numpy(const Tensor& t) {
  if (!t.device().is_cpu()) {
    throw nb::type_error(("numpy(): the tensor is on " + t.device().str() + "; copy it first: t.cpu().numpy()").c_str());
  }
  if (t.dtype() == kBFloat16) throw nb::type_error("numpy(): numpy has no bfloat16; use t.to('float32').numpy()");
  return export_array<nb::numpy>(t);
}

Tensor from_numpy(nb::handle array) {
  nb::ndarray<> a;
  if (!nb::try_cast(array, a, /*convert=*/false) || a.device_type() != nb::device::cpu::value) {
    throw nb::type_error("from_numpy: expected a numpy array");
  }
  return wrap_external(a, "from_numpy");
}

Tensor as_tensor(nb::handle value) {
  if (nb::isinstance<Tensor>(value)) return nb::cast<Tensor>(value);
  nb::object np = nb::module_::import_("numpy");
  return from_numpy(np.attr("array")(value, nb::arg("copy") = true));
}

void bind_tensor(nb::module_& m) {
  nb::exception<Error>(m, "Error", PyExc_ValueError);

  auto cls = nb::class_<Tensor>(m, "Tensor",
      "An n-dimensional array with autograd: a handle to shared storage (copying the handle aliases).");
  cls.def_prop_ro("shape", [](const Tensor& t) { return nb::tuple(nb::cast(t.shape())); }, "sizes, as a tuple")
      .def_prop_ro("dtype", [](const Tensor& t) { return std::string(dtype_name(t.dtype())); },
                   "'float32', 'float64', 'int64', 'int32', 'uint8', 'bool', 'bfloat16' or 'float16'")
      .def_prop_ro("device", [](const Tensor& t) { return t.device().str(); }, "'cpu' or 'cuda:N'")
      .def_prop_ro("ndim", &Tensor::dim, "number of dimensions")
      .def_prop_rw("requires_grad", &Tensor::requires_grad,
                   [](Tensor& t, bool on) { t.set_requires_grad(on); }, "whether backward() accumulates into .grad")
      .def_prop_rw("grad", [](const Tensor& t) { return t.grad().defined() ? std::optional<Tensor>(t.grad()) : std::nullopt; },
                   [](Tensor& t, std::optional<Tensor> g) { t.set_grad(g ? *g : Tensor()); },
                   "the gradient accumulated by backward(), or None")
      .def_prop_ro("grad_fn", [](const Tensor& t) -> std::optional<std::string> {
            if (!t.grad_fn()) return std::nullopt;
            return std::string(t.grad_fn()->name());
          }, "the name of the op that made this tensor (None for leaves)")
      .def_prop_ro("is_leaf", &Tensor::is_leaf, "made by the user, not by an op of the graph")
      .def("dim", &Tensor::dim, "number of dimensions")
      .def("numel", &Tensor::numel, "number of elements")
      .def("size", [](const Tensor& t, std::optional<int64_t> d) -> nb::object {
            if (d) return nb::cast(t.size(*d));
            return nb::tuple(nb::cast(t.shape()));
          }, nb::arg("dim") = nb::none(), "the size of one dim, or all sizes as a tuple")
      .def("stride", [](const Tensor& t) { return nb::tuple(nb::cast(t.strides())); }, "strides in elements")
      .def("is_contiguous", &Tensor::is_contiguous, "row-major without gaps")
      .def("item", [](const Tensor& t) -> nb::object {
            if (t.numel() != 1) throw nb::value_error(("item(): the tensor has " + std::to_string(t.numel()) +
                                                       " elements, not 1").c_str());
            if (t.dtype() == kFloat32 || t.dtype() == kFloat64 || is_reduced_float(t.dtype())) return nb::float_(t.item<double>());
            if (t.dtype() == kBool) return nb::bool_(t.item<int64_t>() != 0);
            return nb::int_(t.item<int64_t>());
          }, "the single element as a Python number")
      .def("numpy", [](const Tensor& t) { check_exportable(t, "numpy"); return to_numpy(t); },
           "a numpy array sharing this tensor's memory (CPU tensors)")
      .def("tolist", [](const Tensor& t) { return to_numpy(t.detach().cpu()).attr("tolist")(); }, "nested Python lists")
      .def("__dlpack__", [](const Tensor& t, nb::kwargs kwargs) {
            check_exportable(t, "__dlpack__");
            return export_array<nb::array_api>(t).attr("__dlpack__")(**kwargs);
          }, "DLPack export (numpy.from_dlpack, torch.from_dlpack); shares memory")
      .def("__dlpack_device__", [](const Tensor& t) {
            return nb::make_tuple(t.is_cuda() ? 2 : 1, t.is_cuda() ? t.device().index : 0);
          }, "(device type, index) as DLPack numbers it")
      .def("to", [](const Tensor& t, const std::string& where) {
            for (const auto& d : kDTypes) {
              if (where == d.name) return t.to(d.dtype);
            }
            return t.to(parse_device(where));
          }, nb::arg("dtype_or_device"), "a copy in another dtype ('float64') or on another device ('cuda'); "
                                         "itself when nothing changes (differentiable)")
      .def("cpu", &Tensor::cpu, "a copy on the CPU (itself when there)")
      .def("cuda", [](const Tensor& t) { return t.to(Device::cuda(0)); }, "a copy on cuda:0")
      .def("float", [](const Tensor& t) { return t.to(kFloat32); }, "as float32")
      .def("double", [](const Tensor& t) { return t.to(kFloat64); }, "as float64")
      .def("long", [](const Tensor& t) { return t.to(kInt64); }, "as int64")
      .def("detach", &Tensor::detach, "the same storage without autograd history")
      .def("clone", &Tensor::clone, "a copy with its own storage (differentiable)")
      .def("contiguous", &Tensor::contiguous, "itself when contiguous, else a contiguous copy")
      .def("requires_grad_", [](Tensor& t, bool on) { t.set_requires_grad(on); return t; }, nb::arg("requires_grad") = true, "sets requires_grad in place; returns the tensor")
      .def("backward", [](const Tensor& t, std::optional<Tensor> grad, bool retain_graph) {
            nb::gil_scoped_release release;  // Python Functions' backwards take it back
            t.backward(grad ? *grad : Tensor(), retain_graph);
          }, nb::arg("gradient") = nb::none(), nb::arg("retain_graph") = false,
          "backpropagates into the .grad of every leaf that requires grad (gradient: 1 for a one-element tensor)")
      .def("zero_", [](Tensor& t) { t.zero_(); return t; }, "fills with 0 in place")
      .def("fill_", [](Tensor& t, double v) { t.fill_(v); return t; }, nb::arg("value"), "fills with value in place")
      .def("copy_", [](Tensor& t, const Tensor& src) { t.copy_(src); return t; }, nb::arg("src"), "copies src in (broadcast, converted)")
      .def("reshape", [](const Tensor& t, nb::args shape) { return t.reshape(sizes_arg(shape)); }, "a view when the strides allow, else a copy; -1 infers one size")
      .def("view", [](const Tensor& t, nb::args shape) { return t.view(sizes_arg(shape)); }, "a view with another shape (no copy)")
      .def("permute", [](const Tensor& t, nb::args dims) { return t.permute(sizes_arg(dims)); }, "a view with the dims reordered")
      .def("expand", [](const Tensor& t, nb::args shape) { return t.expand(sizes_arg(shape)); }, "a view broadcast to the shape (-1 keeps a size)")
      .def("transpose", &Tensor::transpose, nb::arg("dim0"), nb::arg("dim1"), "a view with two dims swapped")
      .def("t", &Tensor::t, "2-D transpose (a view)")
      .def("flatten", &Tensor::flatten, nb::arg("start_dim") = 0, nb::arg("end_dim") = -1, "dims start..end merged into one")
      .def("narrow", &Tensor::narrow, nb::arg("dim"), nb::arg("start"), nb::arg("length"), "a view of `length` entries from `start` along dim")
      .def("select", &Tensor::select, nb::arg("dim"), nb::arg("index"), "a view at `index` along dim, which goes away")
      .def("unsqueeze", &Tensor::unsqueeze, nb::arg("dim"), "a view with a new dim of size 1")
      .def("squeeze", [](const Tensor& t, std::optional<int64_t> d) { return d ? t.squeeze(*d) : t.squeeze(); },
           nb::arg("dim") = nb::none(), "a view without dims of size 1 (or only `dim`)")
      .def("sum", [](const Tensor& t, std::optional<std::vector<int64_t>> dims, bool keepdim) {
            return dims ? sum(t, *dims, keepdim) : sum(t);
          }, nb::arg("dim") = nb::none(), nb::arg("keepdim") = false, "sum of all elements, or over the dims")
      .def("mean", [](const Tensor& t, std::optional<std::vector<int64_t>> dims, bool keepdim) {
            return dims ? mean(t, *dims, keepdim) : mean(t);
          }, nb::arg("dim") = nb::none(), nb::arg("keepdim") = false, "mean of all elements, or over the dims")
      .def("__getitem__", &index, nb::arg("key"), "numpy-style: ints, slices, None, ..., 1-D int64 tensors")
      .def("__len__", [](const Tensor& t) {
            if (t.dim() == 0) throw nb::type_error("len() of a 0-d tensor");
            return t.size(0);
          })
      .def("__bool__", [](const Tensor& t) {
            if (t.numel() != 1) throw nb::value_error("the truth value of a tensor with more than one element is ambiguous");
            return t.item<double>() != 0.0;
          })
      .def("__float__", [](const Tensor& t) { return t.item<double>(); })
      .def("__int__", [](const Tensor& t) { return t.item<int64_t>(); })
      .def("__hash__", [](nb::handle self) { return reinterpret_cast<intptr_t>(self.ptr()); })
      .def("__repr__", &repr)
      .def("__matmul__", [](const Tensor& a, const Tensor& b) { return matmul(a, b); })
      .def("__neg__", [](const Tensor& a) { return -a; })
      .def("__abs__", [](const Tensor& a) { return abs(a); })
      .def("__invert__", [](const Tensor& a) { return logical_not(a); })
      .def("__and__", [](const Tensor& a, const Tensor& b) { return logical_and(a, b); })
      .def("__or__", [](const Tensor& a, const Tensor& b) { return logical_or(a, b); });

  // Arithmetic and comparisons with a tensor or a Python number, both ways round.
#define GNDET_PY_BINARY(pyname, rpyname, expr)                                                         \
  cls.def(pyname, [](const Tensor& a, const Tensor& b) { return expr; })                             \
      .def(pyname, [](const Tensor& a, double s) { const Tensor b = make_like(a, s); return expr; })  \
      .def(rpyname, [](const Tensor& b, double s) { const Tensor a = make_like(b, s); return expr; });
  GNDET_PY_BINARY("__add__", "__radd__", add(a, b))
  GNDET_PY_BINARY("__sub__", "__rsub__", sub(a, b))
  GNDET_PY_BINARY("__mul__", "__rmul__", mul(a, b))
  GNDET_PY_BINARY("__truediv__", "__rtruediv__", div(a, b))
  GNDET_PY_BINARY("__pow__", "__rpow__", pow(a, b))
#undef GNDET_PY_BINARY
#define GNDET_PY_COMPARE(pyname, fn)                                       \
  cls.def(pyname, [](const Tensor& a, const Tensor& b) { return fn(a, b); }) \
      .def(pyname, [](const Tensor& a, double s) { return fn(a, s); });
  GNDET_PY_COMPARE("__eq__", eq)
  GNDET_PY_COMPARE("__ne__", ne)
  GNDET_PY_COMPARE("__lt__", lt)
  GNDET_PY_COMPARE("__le__", le)
  GNDET_PY_COMPARE("__gt__", gt)
  GNDET_PY_COMPARE("__ge__", ge)
#undef GNDET_PY_COMPARE

  m.def("from_numpy", &from_numpy, nb::arg("array"),
        "a tensor sharing the array's memory (either side sees the other's writes; the array lives as long as the tensor)");
  m.def("_from_dlpack", [](nb::handle obj) {
        nb::ndarray<> a;
        if (!nb::try_cast(obj, a, /*convert=*/false)) throw nb::type_error("from_dlpack: the object does not export DLPack");
        return wrap_external(a, "from_dlpack");
      }, nb::arg("obj"));
  auto options = [](const std::string& dtype, const std::string& device) {
    return TensorOptions(parse_dtype(dtype), parse_device(device));
  };
  m.def("zeros", [options](const Shape& s, const std::string& dt, const std::string& dev, bool rg) {
        return zeros(s, options(dt, dev)).set_requires_grad(rg);
      }, nb::arg("shape"), nb::arg("dtype") = "float32", nb::arg("device") = "cpu", nb::arg("requires_grad") = false);
  m.def("ones", [options](const Shape& s, const std::string& dt, const std::string& dev, bool rg) {
        return ones(s, options(dt, dev)).set_requires_grad(rg);
      }, nb::arg("shape"), nb::arg("dtype") = "float32", nb::arg("device") = "cpu", nb::arg("requires_grad") = false);
  m.def("full", [options](const Shape& s, double v, const std::string& dt, const std::string& dev, bool rg) {
        return full(s, v, options(dt, dev)).set_requires_grad(rg);
      }, nb::arg("shape"), nb::arg("fill_value"), nb::arg("dtype") = "float32", nb::arg("device") = "cpu",
      nb::arg("requires_grad") = false);
  m.def("arange", [options](double start, std::optional<double> end, double step, const std::string& dt,
                            const std::string& dev) {
        return end ? arange(start, *end, step, options(dt, dev)) : arange(0.0, start, step, options(dt, dev));
      }, nb::arg("start"), nb::arg("end") = nb::none(), nb::arg("step") = 1.0, nb::arg("dtype") = "int64",
      nb::arg("device") = "cpu", "arange(end) or arange(start, end, step), as numpy");
  m.def("randn", [options](const Shape& s, const std::string& dt, const std::string& dev, bool rg) {
        return randn(s, options(dt, dev)).set_requires_grad(rg);
      }, nb::arg("shape"), nb::arg("dtype") = "float32", nb::arg("device") = "cpu", nb::arg("requires_grad") = false,
      "N(0, 1) from gndet's default generator (manual_seed)");
  m.def("rand", [options](const Shape& s, const std::string& dt, const std::string& dev, bool rg) {
        return rand(s, options(dt, dev)).set_requires_grad(rg);
      }, nb::arg("shape"), nb::arg("dtype") = "float32", nb::arg("device") = "cpu", nb::arg("requires_grad") = false);
  m.def("manual_seed", &manual_seed, nb::arg("seed"), "reseeds gndet's default generator");
  m.def("is_grad_enabled", &autograd::grad_enabled);
  m.def("set_grad_enabled", &autograd::set_grad_enabled, nb::arg("enabled"));
}

}  // namespace gndet::py
