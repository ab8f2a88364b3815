// cub::DeviceRadixSort::SortPairs on the emulated device: the same contract (a size query when
// d_temp_storage is null, keys ordered by bits [begin_bit, end_bit) as unsigned, stable, so equal
// keys keep their input order, values carried along), run in stream order as host work. The keys'
// extracted bits are sorted by a least-significant-digit radix sort, as CUB does, which is what
// makes the order of ties CUB's.
#pragma once

#include <cuda_runtime.h>

#include <cstring>
#include <type_traits>
#include <vector>

#include "tensor/cuda/emulator/emulator.h"

namespace cub {

struct DeviceRadixSort {
  template <class KeyT, class ValueT, class NumItemsT>
  static cudaError_t SortPairs(void* d_temp_storage, size_t& temp_storage_bytes, const KeyT* d_keys_in,
                               KeyT* d_keys_out, const ValueT* d_values_in, ValueT* d_values_out, NumItemsT num_items,
                               int begin_bit = 0, int end_bit = static_cast<int>(sizeof(KeyT) * 8),
                               cudaStream_t stream = 0) {
    static_assert(std::is_unsigned_v<KeyT>, "the emulated SortPairs takes unsigned keys, as gndet passes them");
    if (d_temp_storage == nullptr) {
      temp_storage_bytes = kTempBytes;
      return cudaSuccess;
    }
    if (temp_storage_bytes < kTempBytes || begin_bit < 0 || end_bit > static_cast<int>(sizeof(KeyT) * 8) ||
        begin_bit > end_bit || num_items < 0) {
      return cudaErrorInvalidValue;
    }
    const size_t n = static_cast<size_t>(num_items);
    return gndet::cuda::emu::enqueue_host_work(stream, "cub::DeviceRadixSort::SortPairs", [=] {
      namespace emu = gndet::cuda::emu;
      emu::check_device_range(d_temp_storage, kTempBytes, "cub::DeviceRadixSort::SortPairs temporary storage");
      emu::check_device_range(d_keys_in, n * sizeof(KeyT), "cub::DeviceRadixSort::SortPairs keys in");
      emu::check_device_range(d_keys_out, n * sizeof(KeyT), "cub::DeviceRadixSort::SortPairs keys out");
      emu::check_device_range(d_values_in, n * sizeof(ValueT), "cub::DeviceRadixSort::SortPairs values in");
      emu::check_device_range(d_values_out, n * sizeof(ValueT), "cub::DeviceRadixSort::SortPairs values out");
      std::vector<size_t> order(n), next(n);
      for (size_t i = 0; i < n; ++i) order[i] = i;
      auto digit_of = [&](size_t i, int shift, int width) {
        const KeyT bits = static_cast<KeyT>(d_keys_in[i] >> shift);
        return static_cast<size_t>(width >= static_cast<int>(sizeof(KeyT) * 8) ? bits : bits & ((KeyT(1) << width) - 1));
      };
      for (int shift = begin_bit; shift < end_bit; shift += 8) {  // stable counting sort per 8-bit digit
        const int width = end_bit - shift < 8 ? end_bit - shift : 8;
        std::vector<size_t> count((size_t{1} << width) + 1, 0);
        for (size_t i = 0; i < n; ++i) ++count[digit_of(order[i], shift, width) + 1];
        for (size_t d = 1; d < count.size(); ++d) count[d] += count[d - 1];
        for (size_t i = 0; i < n; ++i) next[count[digit_of(order[i], shift, width)]++] = order[i];
        order.swap(next);
      }
      // Through a copy: in and out may not overlap in CUB either, but the copy keeps this honest.
      std::vector<KeyT> keys(n);
      std::vector<ValueT> values(n);
      for (size_t i = 0; i < n; ++i) {
        keys[i] = d_keys_in[order[i]];
        values[i] = d_values_in[order[i]];
      }
      std::memcpy(d_keys_out, keys.data(), n * sizeof(KeyT));
      std::memcpy(d_values_out, values.data(), n * sizeof(ValueT));
    });
  }

 private:
  static constexpr size_t kTempBytes = 256;
};

}  // namespace cub
