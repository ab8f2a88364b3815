// Fuzz target: the safetensors reader (8-byte length, JSON header, tensor data).
#include "tensor/safetensors.h"
#include "tests/fuzz/fuzz_target.h"

GNDET_FUZZ_TARGET(safetensors) {
  const gndet::SafetensorsFile f = gndet::load_safetensors(gndet::fuzz::write_input_file(input, "in.safetensors"));
  for (const auto& [name, t] : f.tensors) GNDET_FUZZ_ASSERT(t.numel() * static_cast<int64_t>(t.element_size()) <= static_cast<int64_t>(input.size()));
}
