// Elementwise ops with numpy broadcasting. Both operands of a binary op must have the same dtype
// and device (no silent promotion); scalars take the tensor's dtype. Comparisons return bool.
//
// Gradients: every float op below is differentiable except sign, floor, ceil, comparisons and
// logical ops, whose outputs never require grad.
#pragma once

#include "tensor/dispatch.h"
#include "tensor/tensor.h"
#include "ops/elementwise_functors.h"

namespace gndet {

enum class UnaryOp : uint8_t {
#define GNDET_X(name) name,
  GNDET_UNARY_OPS(GNDET_X)
#undef GNDET_X
};
enum class BinaryOp : uint8_t {
#define GNDET_X(name) name,
  GNDET_BINARY_OPS(GNDET_X)
#undef GNDET_X
};

inline const char* op_name(UnaryOp op) {
  switch (op) {
#define GNDET_X(name) case UnaryOp::name: return #name;
    GNDET_UNARY_OPS(GNDET_X)
#undef GNDET_X
  }
  return "?";
}
inline const char* op_name(BinaryOp op) {
  switch (op) {
#define GNDET_X(name) case BinaryOp::name: return #name;
    GNDET_BINARY_OPS(GNDET_X)
#undef GNDET_X
  }
  return "?";
}

// out = f(in; a, b). out has in's shape and dtype.
GNDET_DECLARE_KERNEL(unary_kernel, void(UnaryOp op, double a, double b, const Tensor& out, const Tensor& in));
// out = f(x, y), x and y broadcast to out's shape.
GNDET_DECLARE_KERNEL(binary_kernel, void(BinaryOp op, const Tensor& out, const Tensor& x, const Tensor& y));
// out = cond ? x : y, all broadcast to out's shape; cond is bool.
GNDET_DECLARE_KERNEL(where_kernel, void(const Tensor& out, const Tensor& cond, const Tensor& x, const Tensor& y));

// ---- arithmetic ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);  // ties send half the gradient to each side
Tensor minimum(const Tensor& a, const Tensor& b);

Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor div(const Tensor& a, double s);
Tensor rdiv(double s, const Tensor& a);  // s / a
Tensor pow(const Tensor& a, double p);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator+(double s, const Tensor& a);
Tensor operator-(const Tensor& a, double s);
Tensor operator-(double s, const Tensor& a);
Tensor operator*(const Tensor& a, double s);
Tensor operator*(double s, const Tensor& a);
Tensor operator/(const Tensor& a, double s);
Tensor operator/(double s, const Tensor& a);

// ---- unary ----
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);
Tensor abs(const Tensor& x);    // gradient sign(x), 0 at 0
Tensor relu(const Tensor& x);   // gradient 0 at 0
Tensor add_relu(const Tensor& a, const Tensor& b);  // relu(a + b) in one pass (ResNet's residual join), broadcast
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
// Limits to [lo, hi] (either may be infinite); the gradient passes where lo <= x <= hi.
Tensor clamp(const Tensor& x, double lo, double hi);
Tensor clamp_min(const Tensor& x, double lo);
Tensor clamp_max(const Tensor& x, double hi);
Tensor sign(const Tensor& x);
Tensor floor(const Tensor& x);
Tensor ceil(const Tensor& x);

// ---- comparisons and logic (bool results, no gradient) ----
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double s);
Tensor ne(const Tensor& a, double s);
Tensor lt(const Tensor& a, double s);
Tensor le(const Tensor& a, double s);
Tensor gt(const Tensor& a, double s);
Tensor ge(const Tensor& a, double s);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);

// cond ? a : b, broadcast together; differentiable in a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
Tensor where(const Tensor& cond, const Tensor& a, double b);

// ---- backward helpers (no gradient of their own) ----
Tensor relu_backward(const Tensor& grad, const Tensor& y);     // grad * (y > 0)
Tensor sigmoid_backward(const Tensor& grad, const Tensor& y);  // grad * y * (1 - y)
Tensor tanh_backward(const Tensor& grad, const Tensor& y);     // grad * (1 - y^2)

// In-place update for optimisers (refused on tensors that require grad while grad mode is on):
// x += alpha * y, with y broadcast to x's shape.
Tensor& add_(Tensor& x, const Tensor& y, double alpha = 1.0);
Tensor& mul_(Tensor& x, double s);

}  // namespace gndet
