// Element types and the switch that turns a runtime DType into a compile-time type.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tensor/error.h"

namespace gndet {

enum class DType : uint8_t { Float32, Float64, Int64, Int32, UInt8, Bool };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kUInt8 = DType::UInt8;
inline constexpr DType kBool = DType::Bool;

size_t itemsize(DType t);
const char* dtype_name(DType t);  // "float32", "int64", ...
inline bool is_floating(DType t) { return t == kFloat32 || t == kFloat64; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return kFloat32; }
template <> constexpr DType dtype_of<double>() { return kFloat64; }
template <> constexpr DType dtype_of<int64_t>() { return kInt64; }
template <> constexpr DType dtype_of<int32_t>() { return kInt32; }
template <> constexpr DType dtype_of<uint8_t>() { return kUInt8; }
template <> constexpr DType dtype_of<bool>() { return kBool; }

// dispatch_*(dtype, "op", [&]<class T>() { ... }) calls the lambda with T bound to the C++ type
// of `dtype`, or throws naming the op when the dtype is not among those the variant accepts.
template <class F>
decltype(auto) dispatch_floating(DType t, const char* op, F&& f) {
  switch (t) {
    case kFloat32: return f.template operator()<float>();
    case kFloat64: return f.template operator()<double>();
    default: GNDET_FAIL(op, ": expected a float32 or float64 tensor, got ", dtype_name(t));
  }
}

// Numbers: floating types and the integer types (not bool).
template <class F>
decltype(auto) dispatch_numeric(DType t, const char* op, F&& f) {
  switch (t) {
    case kFloat32: return f.template operator()<float>();
    case kFloat64: return f.template operator()<double>();
    case kInt64: return f.template operator()<int64_t>();
    case kInt32: return f.template operator()<int32_t>();
    case kUInt8: return f.template operator()<uint8_t>();
    default: GNDET_FAIL(op, ": expected a numeric tensor, got ", dtype_name(t));
  }
}

template <class F>
decltype(auto) dispatch_all(DType t, const char* op, F&& f) {
  switch (t) {
    case kFloat32: return f.template operator()<float>();
    case kFloat64: return f.template operator()<double>();
    case kInt64: return f.template operator()<int64_t>();
    case kInt32: return f.template operator()<int32_t>();
    case kUInt8: return f.template operator()<uint8_t>();
    case kBool: return f.template operator()<bool>();
  }
  GNDET_FAIL(op, ": unknown dtype");
}

// Index tensors: int64 or int32.
template <class F>
decltype(auto) dispatch_index(DType t, const char* op, F&& f) {
  switch (t) {
    case kInt64: return f.template operator()<int64_t>();
    case kInt32: return f.template operator()<int32_t>();
    default: GNDET_FAIL(op, ": expected an int64 or int32 index tensor, got ", dtype_name(t));
  }
}

}  // namespace gndet
