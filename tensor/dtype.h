// Element types and the switch that turns a runtime DType into a compile-time type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "tensor/error.h"
#include "tensor/half.h"

namespace gndet {

// BFloat16 and Float16 are storage types only (tensor/half.h): they hold autocast's operands for
// the tensor-core products (ops/autocast.h), convert to and from every other dtype, and are
// rejected by every op that computes.
enum class DType : uint8_t { Float32, Float64, Int64, Int32, UInt8, Bool, BFloat16, Float16 };

inline constexpr DType kFloat32 = DType::Float32;
inline constexpr DType kFloat64 = DType::Float64;
inline constexpr DType kInt64 = DType::Int64;
inline constexpr DType kInt32 = DType::Int32;
inline constexpr DType kUInt8 = DType::UInt8;
inline constexpr DType kBool = DType::Bool;
inline constexpr DType kBFloat16 = DType::BFloat16;
inline constexpr DType kFloat16 = DType::Float16;

size_t itemsize(DType t);
const char* dtype_name(DType t);  // "float32", "int64", ...
inline bool is_floating(DType t) { return t == kFloat32 || t == kFloat64; }  // the dtypes ops compute in
inline bool is_reduced_float(DType t) { return t == kBFloat16 || t == kFloat16; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return kFloat32; }
template <> constexpr DType dtype_of<double>() { return kFloat64; }
template <> constexpr DType dtype_of<int64_t>() { return kInt64; }
template <> constexpr DType dtype_of<int32_t>() { return kInt32; }
template <> constexpr DType dtype_of<uint8_t>() { return kUInt8; }
template <> constexpr DType dtype_of<bool>() { return kBool; }
template <> constexpr DType dtype_of<BFloat16>() { return kBFloat16; }
template <> constexpr DType dtype_of<Float16>() { return kFloat16; }

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
    case kBFloat16:
    case kFloat16: break;
  }
  GNDET_FAIL(op, ": ", dtype_name(t), " tensors hold autocast operands only and are not computed on; convert with .to(kFloat32)");
}

// Every dtype, the 16-bit storage types included: for what only stores and converts (fill_, copy_).
template <class F>
decltype(auto) dispatch_storage(DType t, const char* op, F&& f) {
  switch (t) {
    case kBFloat16: return f.template operator()<BFloat16>();
    case kFloat16: return f.template operator()<Float16>();
    default: return dispatch_all(t, op, std::forward<F>(f));
  }
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
