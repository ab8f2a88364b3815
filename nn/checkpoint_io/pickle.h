// A pickle reader that never executes anything.
//
// Python's pickle format is a little stack machine whose GLOBAL opcode names any importable
// callable and whose REDUCE opcode calls it: loading an untrusted pickle with Python can run any
// code. This reader implements the opcodes of protocols 2-5 that checkpoints use (see the table in
// pickle.cpp) and understands a fixed list of globals (kWhitelist in pickle.cpp) by *meaning*:
// torch._utils._rebuild_tensor_v2 becomes a tensor description, collections.OrderedDict a dict,
// numpy.core.multiarray._reconstruct + BUILD an array, and so on. Any other global is refused with
// an error naming `module.name`, before anything else happens. Nothing is ever imported or called.
//
// Values form a tree of `Value`s; tensors stay descriptions (storage, offset, sizes, strides) until
// `materialize` copies them into gndet tensors, because a legacy .pth file stores its data after
// the pickle that refers to it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace gndet::nn::ckpt {

// Element types found in checkpoints (a superset of gndet's DType: half types are converted).
enum class Elem { F32, F64, F16, BF16, I64, I32, I16, I8, U8, Bool };
size_t elem_size(Elem e);
const char* elem_name(Elem e);

// Raw bytes of one storage, filled when its data is read (legacy files: after the pickle).
struct StorageRef {
  std::string key;
  Elem elem = Elem::U8;
  int64_t numel = 0;  // elements, as the persistent id declares it
  std::shared_ptr<const std::string> bytes;  // null until read
};

struct TensorRef {  // torch.Tensor: a strided view of a storage
  std::shared_ptr<StorageRef> storage;
  int64_t offset = 0;  // elements
  Shape sizes, strides;
};

struct ArrayRef {  // numpy.ndarray (C or Fortran order, contiguous)
  Elem elem = Elem::F32;
  std::string unsupported;  // non-empty: a dtype / layout gndet cannot read (kept so that metadata loads)
  bool big_endian = false;
  bool built = false;  // BUILD has filled it
  bool fortran = false;
  Shape shape;
  std::string bytes;
};

struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, BigInt, Float, Str, Bytes, Tuple, List, Set, Dict, Global, Object, Storage, Tensor, Array, Dtype };
  Kind kind = Kind::None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  // Str: UTF-8 text; Bytes: raw bytes (also Python 2 `str`); BigInt: little-endian two's complement;
  // Global and Object: "module.name" of the global / class.
  std::string s;
  std::vector<ValuePtr> items;  // Tuple, List, Set; Object: its constructor arguments
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;
  std::unordered_map<std::string, size_t> index;  // Dict: text keys -> position in `dict`
  ValuePtr state;                                  // Object: what BUILD gave it
  std::shared_ptr<StorageRef> storage;  // Storage (what a persistent id loads)
  std::shared_ptr<TensorRef> tensor;
  std::shared_ptr<ArrayRef> array;  // Array; Dtype uses array->elem / big_endian

  Value() = default;
  Value(const Value&) = delete;
  Value& operator=(const Value&) = delete;
  // Releases nested values iteratively: a hostile pickle can nest a million tuples in a megabyte,
  // which recursive destruction would turn into a stack overflow.
  ~Value();

  bool is_text() const { return kind == Kind::Str || kind == Kind::Bytes; }
  // Dict lookup by text key; null when absent or not a dict.
  const ValuePtr* get(const std::string& key) const;
  const char* kind_name() const;
};

struct UnpickleOptions {
  // Called for BINPERSID with the persistent id; null = a plain pickle, where one is an error.
  std::function<ValuePtr(const ValuePtr& pid)> persistent_load;
};

// Runs the pickle that starts at bytes[*pos] up to its STOP and returns the object; *pos is left
// after the STOP (a legacy .pth holds several pickles back to back). `what` names the file.
ValuePtr unpickle(std::string_view bytes, size_t* pos, const std::string& what, const UnpickleOptions& options = {});

// The element type a storage class stands for (torch.FloatStorage -> F32); false when it is none.
bool storage_type_elem(const std::string& qualified_name, Elem* elem);

// Whether the reader knows `module.name` (the whitelist), for tests and documentation.
bool is_whitelisted_global(const std::string& qualified_name);

// Copies a tensor or array description into a contiguous gndet tensor on the CPU. float16 and
// bfloat16 become float32, int8 / int16 become int32 (gndet has no narrower types); all others
// keep their type. Throws naming `what` when the storage is too short for the view, absent, or
// the description is inconsistent.
Tensor materialize(const Value& v, const std::string& what);

}  // namespace gndet::nn::ckpt
