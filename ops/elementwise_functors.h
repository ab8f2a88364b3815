// The math of every elementwise op, written once for the CPU and CUDA kernels.
//
// GNDET_UNARY_OPS / GNDET_BINARY_OPS list the functors (X-macro tables): each table entry becomes
// an enum value in elementwise.h and a `case` in both kernel files, so adding an op here is the
// only step needed for both devices. `ok<T>` says which element types an op accepts; the kernels
// never instantiate the others.
#pragma once

#include <cmath>
#include <cstdint>
#include <type_traits>

#if defined(__CUDACC__)
#define GNDET_HD __host__ __device__ __forceinline__
#else
#define GNDET_HD inline
#endif

namespace gndet::ew {

template <class T> inline constexpr bool is_float_v = std::is_floating_point_v<T>;
template <class T> inline constexpr bool is_num_v = !std::is_same_v<T, bool>;
template <class T> inline constexpr bool is_bool_v = std::is_same_v<T, bool>;
template <class T> inline constexpr bool any_v = true;

// ---- math that has one name on the host and another on the device ----
#if defined(__CUDA_ARCH__)
GNDET_HD float m_exp(float x) { return ::expf(x); }
GNDET_HD double m_exp(double x) { return ::exp(x); }
GNDET_HD float m_log(float x) { return ::logf(x); }
GNDET_HD double m_log(double x) { return ::log(x); }
GNDET_HD float m_sqrt(float x) { return ::sqrtf(x); }
GNDET_HD double m_sqrt(double x) { return ::sqrt(x); }
GNDET_HD float m_tanh(float x) { return ::tanhf(x); }
GNDET_HD double m_tanh(double x) { return ::tanh(x); }
GNDET_HD float m_pow(float x, float y) { return ::powf(x, y); }
GNDET_HD double m_pow(double x, double y) { return ::pow(x, y); }
GNDET_HD float m_floor(float x) { return ::floorf(x); }
GNDET_HD double m_floor(double x) { return ::floor(x); }
GNDET_HD float m_ceil(float x) { return ::ceilf(x); }
GNDET_HD double m_ceil(double x) { return ::ceil(x); }
#else
template <class T> GNDET_HD T m_exp(T x) { return std::exp(x); }
template <class T> GNDET_HD T m_log(T x) { return std::log(x); }
template <class T> GNDET_HD T m_sqrt(T x) { return std::sqrt(x); }
template <class T> GNDET_HD T m_tanh(T x) { return std::tanh(x); }
template <class T> GNDET_HD T m_pow(T x, T y) { return std::pow(x, y); }
template <class T> GNDET_HD T m_floor(T x) { return std::floor(x); }
template <class T> GNDET_HD T m_ceil(T x) { return std::ceil(x); }
#endif

// ---- unary: y = f(x; a, b), same dtype in and out ----
#define GNDET_UNARY_FUNCTOR(Name, Accepts, expr)                 \
  struct Name {                                                   \
    double a = 0, b = 0;                                          \
    template <class T> static constexpr bool ok = Accepts<T>;     \
    template <class T> GNDET_HD T operator()(T x) const { return expr; } \
  };

GNDET_UNARY_FUNCTOR(Neg, is_num_v, static_cast<T>(-x))
GNDET_UNARY_FUNCTOR(Exp, is_float_v, m_exp(x))
GNDET_UNARY_FUNCTOR(Log, is_float_v, m_log(x))
GNDET_UNARY_FUNCTOR(Sqrt, is_float_v, m_sqrt(x))
GNDET_UNARY_FUNCTOR(Rsqrt, is_float_v, T(1) / m_sqrt(x))
GNDET_UNARY_FUNCTOR(Abs, is_num_v, x < T(0) ? static_cast<T>(-x) : x)
GNDET_UNARY_FUNCTOR(Sign, is_num_v, static_cast<T>((T(0) < x) - (x < T(0))))
GNDET_UNARY_FUNCTOR(Relu, is_num_v, x > T(0) ? x : T(0))
// Split at 0 so that exp never overflows.
GNDET_UNARY_FUNCTOR(Sigmoid, is_float_v, x >= T(0) ? T(1) / (T(1) + m_exp(-x)) : m_exp(x) / (T(1) + m_exp(x)))
GNDET_UNARY_FUNCTOR(Tanh, is_float_v, m_tanh(x))
// Bounds compared in double; a bound is converted to T only when x lies beyond it, so an
// infinite bound never meets an integer type.
GNDET_UNARY_FUNCTOR(Clamp, is_num_v,
                    static_cast<double>(x) < a ? static_cast<T>(a) : (static_cast<double>(x) > b ? static_cast<T>(b) : x))
GNDET_UNARY_FUNCTOR(PowScalar, is_float_v, m_pow(x, static_cast<T>(a)))
GNDET_UNARY_FUNCTOR(AddScalar, is_num_v, static_cast<T>(x + static_cast<T>(a)))
GNDET_UNARY_FUNCTOR(MulScalar, is_num_v, static_cast<T>(x * static_cast<T>(a)))
GNDET_UNARY_FUNCTOR(DivScalar, is_float_v, x / static_cast<T>(a))
GNDET_UNARY_FUNCTOR(RdivScalar, is_float_v, static_cast<T>(a) / x)
GNDET_UNARY_FUNCTOR(Floor, is_float_v, m_floor(x))
GNDET_UNARY_FUNCTOR(Ceil, is_float_v, m_ceil(x))
GNDET_UNARY_FUNCTOR(LogicalNot, is_bool_v, !x)
#undef GNDET_UNARY_FUNCTOR

#define GNDET_UNARY_OPS(X)                                                                                  \
  X(Neg) X(Exp) X(Log) X(Sqrt) X(Rsqrt) X(Abs) X(Sign) X(Relu) X(Sigmoid) X(Tanh) X(Clamp) X(PowScalar)     \
  X(AddScalar) X(MulScalar) X(DivScalar) X(RdivScalar) X(Floor) X(Ceil) X(LogicalNot)

// ---- binary: out = f(x, y), x and y of one dtype; Out<T> is the output element type ----
template <class T> using Same = T;
template <class T> using Boolean = bool;

#define GNDET_BINARY_FUNCTOR(Name, Accepts, OutT, expr)                   \
  struct Name {                                                            \
    template <class T> static constexpr bool ok = Accepts<T>;              \
    template <class T> using Out = OutT<T>;                                \
    template <class T> GNDET_HD Out<T> operator()(T x, T y) const { return expr; } \
  };

GNDET_BINARY_FUNCTOR(Add, is_num_v, Same, static_cast<T>(x + y))
GNDET_BINARY_FUNCTOR(Sub, is_num_v, Same, static_cast<T>(x - y))
GNDET_BINARY_FUNCTOR(Mul, is_num_v, Same, static_cast<T>(x * y))
GNDET_BINARY_FUNCTOR(Div, is_float_v, Same, x / y)
GNDET_BINARY_FUNCTOR(Pow, is_float_v, Same, m_pow(x, y))
GNDET_BINARY_FUNCTOR(Maximum, is_num_v, Same, (x != x || x > y) ? x : y)  // NaN propagates from x
GNDET_BINARY_FUNCTOR(Minimum, is_num_v, Same, (x != x || x < y) ? x : y)
GNDET_BINARY_FUNCTOR(AddRelu, is_float_v, Same, (x + y) > T(0) ? static_cast<T>(x + y) : T(0))  // relu(x + y)
// Backward helpers: x is the incoming gradient, y the forward output.
GNDET_BINARY_FUNCTOR(ReluGrad, is_float_v, Same, y > T(0) ? x : T(0))
GNDET_BINARY_FUNCTOR(SigmoidGrad, is_float_v, Same, x * y * (T(1) - y))
GNDET_BINARY_FUNCTOR(TanhGrad, is_float_v, Same, x * (T(1) - y * y))
GNDET_BINARY_FUNCTOR(Eq, any_v, Boolean, x == y)
GNDET_BINARY_FUNCTOR(Ne, any_v, Boolean, x != y)
GNDET_BINARY_FUNCTOR(Lt, any_v, Boolean, x < y)
GNDET_BINARY_FUNCTOR(Le, any_v, Boolean, x <= y)
GNDET_BINARY_FUNCTOR(Gt, any_v, Boolean, x > y)
GNDET_BINARY_FUNCTOR(Ge, any_v, Boolean, x >= y)
GNDET_BINARY_FUNCTOR(LogicalAnd, is_bool_v, Boolean, x && y)
GNDET_BINARY_FUNCTOR(LogicalOr, is_bool_v, Boolean, x || y)
#undef GNDET_BINARY_FUNCTOR

#define GNDET_BINARY_OPS(X)                                                                          \
  X(Add) X(Sub) X(Mul) X(Div) X(Pow) X(Maximum) X(Minimum) X(AddRelu) X(ReluGrad) X(SigmoidGrad) X(TanhGrad) \
  X(Eq) X(Ne) X(Lt) X(Le) X(Gt) X(Ge) X(LogicalAnd) X(LogicalOr)

}  // namespace gndet::ew
