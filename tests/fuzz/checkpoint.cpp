// Fuzz target: the PyTorch .pth (zip and legacy) and .pkl (detectron2, Detectron) reader: container,
// pickle virtual machine with its whitelist, tensors as views over storages.
#include "nn/checkpoint_io/torch_file.h"
#include "tests/fuzz/fuzz_target.h"

GNDET_FUZZ_TARGET(checkpoint) {
  const gndet::nn::ckpt::ForeignWeights w = gndet::nn::ckpt::parse_checkpoint_buffer(input, "fuzz input");
  // Every tensor was copied out of the input: it cannot hold more bytes than the input had
  // (float16/bfloat16 widen to float32, so allow 2x).
  for (const auto& [name, t] : w.tensors)
    GNDET_FUZZ_ASSERT(t.numel() * static_cast<int64_t>(t.element_size()) <= 2 * static_cast<int64_t>(input.size()) + 64);
}
