// Autocast: mixed-precision training (PyTorch's torch.autocast under mmengine's AmpOptimWrapper).
//
// Inside an autocast::Guard(kBFloat16 or kFloat16) the products -- conv2d, conv_transpose2d,
// linear, bmm and matmul (PyTorch's lower-precision list, as far as gndet has those ops) --
// multiply operands rounded to the 16-bit type and accumulate in float32. Every other op
// (GroupNorm and its statistics, softmax, RoIAlign, the losses) runs in float32 as before:
// PyTorch's float32 list, which for a GN model is everything that is not a product. Only float32 inputs are cast; float64 is left alone (as in PyTorch), so gradchecks are
// unaffected.
//
// Unlike PyTorch, no 16-bit tensor leaves an op. A product's output is rounded once to the 16-bit
// type (as the tensor core writes it) and handed on as float32; the op keeps its float32 inputs for
// backward and rounds them again there (rounding is deterministic: the same operands), and rounds
// the incoming gradient the same way (in PyTorch it arrives 16-bit because the output was). So a
// product computes PyTorch autocast's numbers, while the autograd graph, the optimizer and every
// other op see float32 only, and the memory held for backward is float32 training's (PyTorch
// halves that of the products' outputs; gndet does not). A bias is added in float32 after the
// rounding (PyTorch rounds it and adds it inside the 16-bit output): slightly more exact.
//
// On CUDA the operands are real bfloat16 / float16 tensors that cuDNN and cuBLAS multiply on tensor
// cores (the speed-up). On the CPU they are float32 tensors holding the rounded values, multiplied
// by the float32 kernels: the same numbers up to float32 summation order, at float32 speed plus the
// rounding passes. The CPU path is there to test the policy and to run the numerics anywhere.
#pragma once

#include <optional>
#include <string>

#include "tensor/tensor.h"

namespace gndet::autocast {

// The 16-bit type products use on this thread; nullopt when autocast is off (the default).
std::optional<DType> dtype();

// Sets the autocast type for its scope (nullopt: a float32 region inside an autocast one).
class Guard {
 public:
  explicit Guard(std::optional<DType> dtype);
  ~Guard();
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

 private:
  std::optional<DType> prev_;
};

// "bf16" / "bfloat16" -> kBFloat16, "fp16" / "float16" -> kFloat16; anything else throws naming `what`.
DType parse_dtype(const std::string& name, const std::string& what);

// How one product (conv2d, conv_transpose2d, linear, bmm) computes, decided from its input when the op is
// called and kept for its backward.
class Product {
 public:
  static Product for_input(const Tensor& x);  // reduced when autocast is on and x is float32
  bool reduced() const { return low_.has_value(); }
  // t as the kernel reads it: t itself, or t rounded to the 16-bit type (a 16-bit tensor on CUDA,
  // float32 holding the rounded values on the CPU). Undefined stays undefined.
  Tensor operand(const Tensor& t) const;
  // The kernel's output as the op returns it: itself, or rounded to the 16-bit type and widened to
  // float32.
  Tensor result(const Tensor& y) const;

 private:
  std::optional<DType> low_;
};

}  // namespace gndet::autocast
