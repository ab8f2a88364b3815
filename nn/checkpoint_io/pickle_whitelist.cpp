#include "nn/checkpoint_io/pickle_whitelist.h"

namespace gndet::nn::ckpt {
namespace {

struct StorageTag {
  const char* name;
  Elem elem;
};
constexpr StorageTag kStorageTypes[] = {
    {"torch.FloatStorage", Elem::F32},  {"torch.DoubleStorage", Elem::F64},   {"torch.HalfStorage", Elem::F16},
    {"torch.BFloat16Storage", Elem::BF16}, {"torch.LongStorage", Elem::I64}, {"torch.IntStorage", Elem::I32},
    {"torch.ShortStorage", Elem::I16},  {"torch.CharStorage", Elem::I8},     {"torch.ByteStorage", Elem::U8},
    {"torch.BoolStorage", Elem::Bool},  {"torch.storage.UntypedStorage", Elem::U8},
    {"torch.UntypedStorage", Elem::U8},
};

}  // namespace

// The whitelist. mmengine checkpoints also pickle their MessageHub (HistoryBuffer objects made
// with copyreg._reconstructor, holding numpy arrays and scalars) and numpy scalars in `meta`:
// those are data, read as inert objects, so that a real checkpoint loads; the weights never depend
// on them.
const std::map<std::string, Meaning>& whitelist() {
  static const std::map<std::string, Meaning> table = [] {
    std::map<std::string, Meaning> t = {
        {"torch._utils._rebuild_tensor_v2", Meaning::RebuildTensor},
        {"torch._utils._rebuild_tensor", Meaning::RebuildTensor},
        {"torch._utils._rebuild_parameter", Meaning::RebuildParameter},
        {"torch._utils._rebuild_parameter_with_state", Meaning::RebuildParameter},
        {"collections.OrderedDict", Meaning::MakeDict},
        {"collections.defaultdict", Meaning::MakeDict},
        {"builtins.dict", Meaning::MakeDict},
        {"builtins.set", Meaning::MakeSet},
        {"builtins.frozenset", Meaning::MakeSet},
        {"builtins.object", Meaning::Tag},
        {"builtins.list", Meaning::Tag},  // defaultdict(list) names its factory
        {"builtins.int", Meaning::Tag},
        {"builtins.float", Meaning::Tag},
        {"numpy.ndarray", Meaning::Tag},
        {"numpy.core.multiarray._reconstruct", Meaning::NumpyReconstruct},
        {"numpy._core.multiarray._reconstruct", Meaning::NumpyReconstruct},  // numpy 2 spelling
        {"numpy.core.numeric._frombuffer", Meaning::NumpyFromBuffer},
        {"numpy._core.numeric._frombuffer", Meaning::NumpyFromBuffer},
        {"numpy.core.multiarray.scalar", Meaning::NumpyScalar},
        {"numpy._core.multiarray.scalar", Meaning::NumpyScalar},
        {"numpy.dtype", Meaning::NumpyDtype},
        {"_codecs.encode", Meaning::CodecsEncode},
        {"copyreg._reconstructor", Meaning::Reconstructor},
        {"mmengine.logging.history_buffer.HistoryBuffer", Meaning::InertClass},
        {"builtins.getattr", Meaning::GetAttr},
        {"torch.torch_version.TorchVersion", Meaning::StrSubclass},
    };
    for (const StorageTag& s : kStorageTypes) t[s.name] = Meaning::StorageType;
    return t;
  }();
  return table;
}

// Python 2 module names, as Python 3's unpickler maps them (fix_imports).
std::string normalize_module(const std::string& m) {
  if (m == "__builtin__") return "builtins";
  if (m == "copy_reg") return "copyreg";
  return m;
}

bool elem_of_numpy_descr(const std::string& descr, Elem* elem, bool* big_endian) {
  std::string d = descr;
  *big_endian = false;
  if (!d.empty() && (d[0] == '<' || d[0] == '>' || d[0] == '|' || d[0] == '=')) {
    *big_endian = d[0] == '>';
    d = d.substr(1);
  }
  static const std::pair<const char*, Elem> table[] = {
      {"f4", Elem::F32}, {"f8", Elem::F64}, {"f2", Elem::F16}, {"i8", Elem::I64}, {"i4", Elem::I32},
      {"i2", Elem::I16}, {"i1", Elem::I8},  {"u1", Elem::U8},  {"b1", Elem::Bool}};
  for (const auto& [name, e] : table) {
    if (d == name) {
      *elem = e;
      return true;
    }
  }
  return false;
}

bool is_whitelisted_global(const std::string& q) { return whitelist().count(q) != 0; }

bool storage_type_elem(const std::string& q, Elem* elem) {
  for (const StorageTag& s : kStorageTypes) {
    if (q == s.name) {
      *elem = s.elem;
      return true;
    }
  }
  return false;
}

}  // namespace gndet::nn::ckpt
