// Timing helpers of the GPU benchmarks: CUDA events on the current stream, warm-up runs, median
// of N timed runs; the device and date header every benchmark prints first.
#pragma once

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <functional>
#include <vector>

#include "tensor/cuda/context.h"

namespace gndet::bench {

// Median milliseconds of `reps` runs of fn, each timed alone with events after `warmup` runs.
inline double median_ms(const std::function<void()>& fn, int warmup = 3, int reps = 20) {
  const cudaStream_t stream = cuda::stream_for(0);
  for (int i = 0; i < warmup; ++i) fn();
  cudaEvent_t start, stop;
  GNDET_CUDA_CHECK(cudaEventCreate(&start));
  GNDET_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<double> ms;
  for (int i = 0; i < reps; ++i) {
    GNDET_CUDA_CHECK(cudaEventRecord(start, stream));
    fn();
    GNDET_CUDA_CHECK(cudaEventRecord(stop, stream));
    GNDET_CUDA_CHECK(cudaEventSynchronize(stop));
    float t = 0.0f;
    GNDET_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  GNDET_CUDA_CHECK(cudaEventDestroy(start));
  GNDET_CUDA_CHECK(cudaEventDestroy(stop));
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

inline void print_header(const char* title) {
  const cudaDeviceProp& p = cuda::device_properties(0);
  char date[64];
  const std::time_t now = std::time(nullptr);
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S UTC", std::gmtime(&now));
  int runtime = 0, driver = 0;
  GNDET_CUDA_CHECK(cudaRuntimeGetVersion(&runtime));
  GNDET_CUDA_CHECK(cudaDriverGetVersion(&driver));
  std::printf("%s\ndevice: %s (sm_%d%d, %d SMs, %.1f GiB), CUDA runtime %d, driver %d\ndate: %s\n\n", title, p.name,
              p.major, p.minor, p.multiProcessorCount, static_cast<double>(p.totalGlobalMem) / (1 << 30), runtime, driver,
              date);
}

}  // namespace gndet::bench
