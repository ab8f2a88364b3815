// CUDA kernels for the elementwise family. The functors come from the X-macro tables of
// ops/elementwise_functors.h, exactly as in ops/cpu/elementwise.cpp: an op added to a table is
// compiled here without any edit. Every (op, accepted dtype) pair instantiates two kernels of
// tensor/cuda/loops.cuh: 16-byte vectors over contiguous operands, and a StridedPlan walk for
// views and broadcasting.
#include "ops/elementwise.h"
#include "tensor/cuda/loops.cuh"

namespace gndet {
namespace {

template <class T>
struct Select {
  __device__ T operator()(bool c, T x, T y) const { return c ? x : y; }
};

void unary_cuda(UnaryOp op, double a, double b, const Tensor& out, const Tensor& in) {
  cuda::require_device("unary", out.device(), {&in});
  const Tensor* inputs[] = {&in};
  const StridedPlan p = make_plan(out, inputs, 1, "unary");
  const int dev = out.device().index;
  cuda::DeviceGuard guard(dev);
  bool done = false;
  dispatch_all(in.dtype(), "unary", [&]<class T>() {
    T* o = static_cast<T*>(out.raw_data());
    const T* x = static_cast<const T*>(in.raw_data());
    switch (op) {
#define GNDET_X(name)                                         \
  case UnaryOp::name:                                         \
    if constexpr (ew::name::ok<T>) {                          \
      cuda::launch_elementwise(p, dev, ew::name{a, b}, o, x); \
      done = true;                                            \
    }                                                         \
    break;
      GNDET_UNARY_OPS(GNDET_X)
#undef GNDET_X
    }
  });
  GNDET_CHECK(done, op_name(op), ": does not accept ", dtype_name(in.dtype()), " tensors");
}

void binary_cuda(BinaryOp op, const Tensor& out, const Tensor& a, const Tensor& b) {
  cuda::require_device("binary", out.device(), {&a, &b});
  const Tensor* inputs[] = {&a, &b};
  const StridedPlan p = make_plan(out, inputs, 2, "binary");
  const int dev = out.device().index;
  cuda::DeviceGuard guard(dev);
  bool done = false;
  dispatch_all(a.dtype(), "binary", [&]<class T>() {
    const T* x = static_cast<const T*>(a.raw_data());
    const T* y = static_cast<const T*>(b.raw_data());
    switch (op) {
#define GNDET_X(name)                                                                              \
  case BinaryOp::name:                                                                             \
    if constexpr (ew::name::ok<T>) {                                                               \
      using O = ew::name::Out<T>;                                                                  \
      cuda::launch_elementwise(p, dev, ew::name{}, static_cast<O*>(out.raw_data()), x, y);         \
      done = true;                                                                                 \
    }                                                                                              \
    break;
      GNDET_BINARY_OPS(GNDET_X)
#undef GNDET_X
    }
  });
  GNDET_CHECK(done, op_name(op), ": does not accept ", dtype_name(a.dtype()), " tensors");
}

void where_cuda(const Tensor& out, const Tensor& cond, const Tensor& a, const Tensor& b) {
  cuda::require_device("where", out.device(), {&cond, &a, &b});
  const Tensor* inputs[] = {&cond, &a, &b};
  const StridedPlan p = make_plan(out, inputs, 3, "where");
  const int dev = out.device().index;
  cuda::DeviceGuard guard(dev);
  dispatch_all(a.dtype(), "where", [&]<class T>() {
    cuda::launch_elementwise(p, dev, Select<T>{}, static_cast<T*>(out.raw_data()),
                             static_cast<const bool*>(cond.raw_data()), static_cast<const T*>(a.raw_data()),
                             static_cast<const T*>(b.raw_data()));
  });
}

}  // namespace

GNDET_REGISTER_KERNEL(unary_kernel, CUDA, unary_cuda);
GNDET_REGISTER_KERNEL(binary_kernel, CUDA, binary_cuda);
GNDET_REGISTER_KERNEL(where_kernel, CUDA, where_cuda);

}  // namespace gndet
