// cub::DeviceSelect::Flagged on the emulated device: the items whose flag is set, in input order,
// and their count, with CUB's two-phase contract (a size query when d_temp_storage is null), run
// in stream order as host work.
#pragma once

#include <cuda_runtime.h>

#include <iterator>
#include <type_traits>

#include "tensor/cuda/emulator/emulator.h"

namespace cub {

struct DeviceSelect {
  template <class InputIt, class FlagT, class OutputT, class NumSelectedT, class NumItemsT>
  static cudaError_t Flagged(void* d_temp_storage, size_t& temp_storage_bytes, InputIt d_in, const FlagT* d_flags,
                             OutputT* d_out, NumSelectedT* d_num_selected_out, NumItemsT num_items,
                             cudaStream_t stream = 0) {
    if (d_temp_storage == nullptr) {
      temp_storage_bytes = kTempBytes;
      return cudaSuccess;
    }
    if (temp_storage_bytes < kTempBytes || num_items < 0) return cudaErrorInvalidValue;
    const size_t n = static_cast<size_t>(num_items);
    return gndet::cuda::emu::enqueue_host_work(stream, "cub::DeviceSelect::Flagged", [=] {
      namespace emu = gndet::cuda::emu;
      emu::check_device_range(d_temp_storage, kTempBytes, "cub::DeviceSelect::Flagged temporary storage");
      emu::check_device_range(d_flags, n * sizeof(FlagT), "cub::DeviceSelect::Flagged flags");
      emu::check_device_range(d_num_selected_out, sizeof(NumSelectedT), "cub::DeviceSelect::Flagged count");
      if constexpr (std::is_pointer_v<InputIt>) {
        emu::check_device_range(d_in, n * sizeof(*d_in), "cub::DeviceSelect::Flagged items");
      }
      size_t k = 0;
      for (size_t i = 0; i < n; ++i) {
        if (d_flags[i]) {
          emu::check_device_range(d_out + k, sizeof(OutputT), "cub::DeviceSelect::Flagged output");
          d_out[k++] = static_cast<OutputT>(d_in[i]);
        }
      }
      *d_num_selected_out = static_cast<NumSelectedT>(k);
    });
  }

 private:
  static constexpr size_t kTempBytes = 256;
};

}  // namespace cub
