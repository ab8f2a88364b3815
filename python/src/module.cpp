// gndet._core: the extension module. The package users import is python/gndet, which re-exports
// these names and adds what is written in Python (Function, no_grad, nn.Module, Detector, ...).
#include "python/src/bindings.h"
#include "gndet_config.h"

NB_MODULE(_core, m) {
  using namespace gndet::py;
  m.doc() = "gndet's C++ core (tensors, autograd, ops, layers, the detector)";
  m.attr("__version__") = GNDET_VERSION;
  m.attr("with_cuda") = bool(GNDET_WITH_CUDA);
  m.attr("cuda_emulated") = bool(GNDET_CUDA_EMULATED);
  bind_tensor(m);
  bind_ops(m);
  bind_autograd(m);
  bind_nn(m);
  bind_detector(m);
  bind_detection_internals(m);
}
