// What the binding files share. Each file binds one part of gndet into the extension module
// gndet._core; python/gndet/ wraps it into the package users import.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include "tensor/tensor.h"

namespace gndet::py {
namespace nb = nanobind;

void bind_tensor(nb::module_& m);    // tensor_py.cpp: Tensor, numpy / DLPack, factories, grad mode
void bind_ops(nb::module_& m);       // ops_py.cpp: gndet.ops, generated from op_table.h
void bind_autograd(nb::module_& m);  // autograd_py.cpp: Python Functions, gradcheck, profiler
void bind_nn(nb::module_& m);        // nn_py.cpp: modules, SGD
void bind_detector(nb::module_& m);  // detector_py.cpp: Detector, train
void bind_detection_internals(nb::module_& m);  // detection_py.cpp: anchors, assigner, sampler, RPN stage

// "float32" -> kFloat32; a ValueError naming the choices otherwise.
DType parse_dtype(const std::string& name);
// A Python device argument ("cpu", "cuda", "cuda:1") -> Device.
Device parse_device(const std::string& name);
// A tensor's data as a numpy array that shares its memory (CPU tensors, no autograd history).
nb::object to_numpy(const Tensor& t);
// A numpy array (any dtype gndet has, any non-negative strides) -> a Tensor sharing its memory; the
// array stays alive as long as the tensor's storage does.
Tensor from_numpy(nb::handle array);
// A Tensor, or anything numpy can make an array of (copied), as a Tensor.
Tensor as_tensor(nb::handle value);

}  // namespace gndet::py
