// CPU kernels for the elementwise family: one strided loop per arity, instantiated per functor.
#include "ops/elementwise.h"
#include "tensor/cpu_loop.h"

namespace gndet {
namespace {

template <class T, class F>
void unary_loop(const StridedPlan& p, T* out, const T* in, F f) {
  cpu::for_each_row(p, [&](const int64_t* off, const int64_t* st, int64_t n) {
    T* o = out + off[0];
    const T* x = in + off[1];
    if (st[0] == 1 && st[1] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i]);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(x[i * st[1]]);
    }
  });
}

template <class T, class O, class F>
void binary_loop(const StridedPlan& p, O* out, const T* a, const T* b, F f) {
  cpu::for_each_row(p, [&](const int64_t* off, const int64_t* st, int64_t n) {
    O* o = out + off[0];
    const T* x = a + off[1];
    const T* y = b + off[2];
    if (st[0] == 1 && st[1] == 1 && st[2] == 1) {
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], y[i]);
    } else if (st[0] == 1 && st[1] == 1 && st[2] == 0) {
      const T v = y[0];  // scalar right-hand side: the common "x * s" case
      for (int64_t i = 0; i < n; ++i) o[i] = f(x[i], v);
    } else {
      for (int64_t i = 0; i < n; ++i) o[i * st[0]] = f(x[i * st[1]], y[i * st[2]]);
    }
  });
}

void unary_cpu(UnaryOp op, double a, double b, const Tensor& out, const Tensor& in) {
  const Tensor* inputs[] = {&in};
  const StridedPlan p = make_plan(out, inputs, 1, "unary");
  bool done = false;
  dispatch_all(in.dtype(), "unary", [&]<class T>() {
    T* o = static_cast<T*>(out.raw_data());
    const T* x = static_cast<const T*>(in.raw_data());
    switch (op) {
#define GNDET_X(name)                                                   \
  case UnaryOp::name:                                                   \
    if constexpr (ew::name::ok<T>) {                                    \
      unary_loop(p, o, x, ew::name{a, b});                              \
      done = true;                                                      \
    }                                                                   \
    break;
      GNDET_UNARY_OPS(GNDET_X)
#undef GNDET_X
    }
  });
  GNDET_CHECK(done, op_name(op), ": does not accept ", dtype_name(in.dtype()), " tensors");
}

void binary_cpu(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  const Tensor* inputs[] = {&a, &b};
  const StridedPlan p = make_plan(out, inputs, 2, "binary");
  bool done = false;
  dispatch_all(a.dtype(), "binary", [&]<class T>() {
    const T* x = static_cast<const T*>(a.raw_data());
    const T* y = static_cast<const T*>(b.raw_data());
    switch (op) {
#define GNDET_X(name)                                                                      \
  case BinaryOp::name:                                                                     \
    if constexpr (ew::name::ok<T>) {                                                       \
      using O = ew::name::Out<T>;                                       \
      binary_loop(p, static_cast<O*>(out.raw_data()), x, y, ew::name{});                   \
      done = true;                                                                         \
    }                                                                                      \
    break;
      GNDET_BINARY_OPS(GNDET_X)
#undef GNDET_X
    }
  });
  GNDET_CHECK(done, op_name(op), ": does not accept ", dtype_name(a.dtype()), " tensors");
}

void where_cpu(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  const Tensor* inputs[] = {&cond, &a, &b};
  const StridedPlan p = make_plan(out, inputs, 3, "where");
  dispatch_all(a.dtype(), "where", [&]<class T>() {
    T* o = static_cast<T*>(out.raw_data());
    const bool* c = static_cast<const bool*>(cond.raw_data());
    const T* x = static_cast<const T*>(a.raw_data());
    const T* y = static_cast<const T*>(b.raw_data());
    cpu::for_each_row(p, [&](const int64_t* off, const int64_t* st, int64_t n) {
      for (int64_t i = 0; i < n; ++i) {
        o[off[0] + i * st[0]] = c[off[1] + i * st[1]] ? x[off[2] + i * st[2]] : y[off[3] + i * st[3]];
      }
    });
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(unary_kernel, CPU, unary_cpu);
GNDET_REGISTER_KERNEL(binary_kernel, CPU, binary_cpu);
GNDET_REGISTER_KERNEL(where_kernel, CPU, where_cpu);

}  // namespace gndet
