#include "ops/autocast.h"

namespace gndet::autocast {
namespace {
thread_local std::optional<DType> g_dtype;  // per thread, like grad mode: data workers never see it
}

std::optional<DType> dtype() { return g_dtype; }

Guard::Guard(std::optional<DType> dtype) : prev_(g_dtype) {
  GNDET_CHECK(!dtype || is_reduced_float(*dtype), "autocast: expected bfloat16 or float16, got ", dtype_name(*dtype));
  g_dtype = dtype;
}
Guard::~Guard() { g_dtype = prev_; }

DType parse_dtype(const std::string& name, const std::string& what) {
  if (name == "bf16" || name == "bfloat16") return kBFloat16;
  if (name == "fp16" || name == "float16") return kFloat16;
  GNDET_FAIL(what, ": expected bf16 (bfloat16) or fp16 (float16), got '", name, "'");
}

Product Product::for_input(const Tensor& x) {
  Product p;
  if (g_dtype && x.defined() && x.dtype() == kFloat32) p.low_ = g_dtype;
  return p;
}

Tensor Product::operand(const Tensor& t) const {
  if (!low_ || !t.defined()) return t;
  const Tensor low = t.detach().to(*low_);
  return t.device().is_cuda() ? low : low.to(kFloat32);
}

Tensor Product::result(const Tensor& y) const {
  if (!low_) return y;
  return (y.dtype() == *low_ ? y : y.to(*low_)).to(kFloat32);
}

}  // namespace gndet::autocast
