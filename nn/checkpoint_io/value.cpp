// Values of the pickle reader: element types, dict lookup, and iterative release.
#include "nn/checkpoint_io/pickle.h"

namespace gndet::nn::ckpt {

size_t elem_size(Elem e) {
  switch (e) {
    case Elem::F64:
    case Elem::I64: return 8;
    case Elem::F32:
    case Elem::I32: return 4;
    case Elem::F16:
    case Elem::BF16:
    case Elem::I16: return 2;
    case Elem::I8:
    case Elem::U8:
    case Elem::Bool: return 1;
  }
  return 1;
}

const char* elem_name(Elem e) {
  switch (e) {
    case Elem::F32: return "float32";
    case Elem::F64: return "float64";
    case Elem::F16: return "float16";
    case Elem::BF16: return "bfloat16";
    case Elem::I64: return "int64";
    case Elem::I32: return "int32";
    case Elem::I16: return "int16";
    case Elem::I8: return "int8";
    case Elem::U8: return "uint8";
    case Elem::Bool: return "bool";
  }
  return "?";
}

Value::~Value() {
  std::vector<ValuePtr> pending;
  auto take_children = [&pending](Value& v) {
    for (ValuePtr& c : v.items) pending.push_back(std::move(c));
    for (auto& [k, x] : v.dict) {
      pending.push_back(std::move(k));
      pending.push_back(std::move(x));
    }
    if (v.state) pending.push_back(std::move(v.state));
    v.items.clear();
    v.dict.clear();
  };
  take_children(*this);
  while (!pending.empty()) {
    ValuePtr v = std::move(pending.back());
    pending.pop_back();
    if (v && v.use_count() == 1) take_children(*v);  // its children go on the list, not the stack
  }  // v dies here with no children left
}

const ValuePtr* Value::get(const std::string& key) const {
  if (kind != Kind::Dict) return nullptr;
  auto it = index.find(key);
  return it == index.end() ? nullptr : &dict[it->second].second;
}

const char* Value::kind_name() const {
  static const char* names[] = {"None", "bool", "int", "big int", "float", "str", "bytes", "tuple", "list",
                                "set", "dict", "global", "object", "storage", "tensor", "ndarray", "numpy dtype"};
  return names[static_cast<int>(kind)];
}

}  // namespace gndet::nn::ckpt
