// Deliberately wrong kernels and host code, one per check of the emulated CUDA device
// (docs/emulator.md): each case must be stopped with an error that names the kernel (and, for a
// memory error, the address and the thread). A fault leaves the device unusable, as on a GPU, so
// tests/cuda/test_emulator.cpp runs every case in a process of its own:
//
//   emulator_faults CASE      prints what the device reported; exit 1 when it stopped the case,
//                             0 when nothing was caught, 77 when this machine cannot run the case
//
// Compiled like gndet's kernels (cu_rewrite, access instrumentation), only in -Dcuda=emulate builds.
#include <cstdio>
#include <cstring>
#include <string>

#include "tensor/cuda/context.h"
#include "tensor/cuda/emulator/emulator.h"
#include "tensor/factory.h"

using namespace gndet;

namespace {

constexpr int kN = 1000;

// Writes one element past the end: i runs to n inclusive.
__global__ void write_past_end_cu(float* out, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i <= n; i += gridDim.x * blockDim.x) out[i] = 1.0f;
}

// Reads one element before the start.
__global__ void read_before_start_cu(const float* in, float* out, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = in[i - 1];
}

// Dereferences a pointer it was handed that is host memory.
__global__ void read_host_memory_cu(const float* host, float* out) { out[threadIdx.x] = host[threadIdx.x]; }

// Only the first half of the block reaches the barrier (every thread reads back its own value, so
// the barrier is the only bug).
__global__ void divergent_barrier_cu(float* out) {
  __shared__ float tile[64];
  tile[threadIdx.x] = static_cast<float>(threadIdx.x);
  if (threadIdx.x < 32) __syncthreads();
  out[threadIdx.x] = tile[threadIdx.x];
}

// Threads of the second warp leave before the others' barrier.
__global__ void exit_before_barrier_cu(float* out) {
  __shared__ float tile[64];
  if (threadIdx.x >= 32) return;
  tile[threadIdx.x] = 1.0f;
  __syncthreads();
  out[threadIdx.x] = tile[31 - threadIdx.x];
}

// A block sum whose partials are read without the barrier that must follow their writes.
__global__ void missing_barrier_sum_cu(const float* in, float* out) {
  __shared__ float partial[8];
  float v = in[threadIdx.x];
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  // missing: __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (int w = 0; w < 8; ++w) s += partial[w];
    *out = s;
  }
}

// The same sum, correct.
__global__ void block_sum_cu(const float* in, float* out) {
  __shared__ float partial[8];
  float v = in[threadIdx.x];
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = v;
  __syncthreads();
  if (threadIdx.x == 0) {
    float s = 0.0f;
    for (int w = 0; w < 8; ++w) s += partial[w];
    *out = s;
  }
}

// Lanes of a full-mask shuffle: the second half of the warp has left.
__global__ void shuffle_after_exit_cu(float* out) {
  if (threadIdx.x >= 16) return;
  out[threadIdx.x] = __shfl_xor_sync(0xffffffffu, static_cast<float>(threadIdx.x), 1);
}

__global__ void noop_cu(float* out) { out[0] = 0.0f; }

// Busy work: keeps a stream occupied for a while.
__global__ void busy_cu(float* out, int n, int rounds) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    float v = out[i];
    for (int r = 0; r < rounds; ++r) v = v * 0.5f + 1.0f;
    out[i] = v;
  }
}

// Waits for a flag nobody sets (as a block of the fused GroupNorm waits for its group's partials).
__global__ void wait_forever_cu(const int* flag) {
  if (threadIdx.x == 0) {
    while (*reinterpret_cast<const volatile int*>(flag) == 0) __nanosleep(1000);
  }
  __syncthreads();
}

__global__ void copy_cu(const float* in, float* out, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) out[i] = in[i];
}

float* device_floats(int n) {
  void* p = nullptr;
  GNDET_CUDA_CHECK(cudaMalloc(&p, n * sizeof(float)));
  GNDET_CUDA_CHECK(cudaMemset(p, 0, n * sizeof(float)));
  return static_cast<float*>(p);
}

// The case's work; the device reports a fault at the next synchronisation.
int run(const std::string& c) {
  if (c == "oob-write-cudamalloc") {
    float* out = device_floats(kN);
    write_past_end_cu<<<4, 128>>>(out, kN);
  } else if (c == "oob-read-tensor") {
    // A tensor's block inside a caching-allocator segment: its neighbours are not its memory.
    const Tensor in = full({kN}, 2.0, Device::cuda(0)), out = empty({kN}, Device::cuda(0));
    read_before_start_cu<<<4, 128>>>(in.data<float>(), out.data<float>(), kN);
    GNDET_CUDA_LAUNCH_CHECK();
    cuda::synchronize(0);
    return 0;
  } else if (c == "kernel-reads-host") {
    static float host[32] = {};
    float* out = device_floats(32);
    read_host_memory_cu<<<1, 32>>>(host, out);
  } else if (c == "divergent-barrier") {
    divergent_barrier_cu<<<2, 64>>>(device_floats(64));
  } else if (c == "exit-before-barrier") {
    exit_before_barrier_cu<<<1, 64>>>(device_floats(64));
  } else if (c == "shared-race") {
    const Tensor in = full({256}, 1.0, Device::cuda(0));
    missing_barrier_sum_cu<<<1, 256>>>(in.data<float>(), device_floats(1));
  } else if (c == "shuffle-after-exit") {
    shuffle_after_exit_cu<<<1, 32>>>(device_floats(32));
  } else if (c == "missing-barrier-result") {
    // Racecheck off (GNDET_EMU_RACECHECK=0): only the schedule can show the bug, as a wrong sum.
    const Tensor in = full({256}, 1.0, Device::cuda(0));
    const Tensor wrong = zeros({1}, Device::cuda(0)), right = zeros({1}, Device::cuda(0));
    missing_barrier_sum_cu<<<1, 256>>>(in.data<float>(), wrong.data<float>());
    GNDET_CUDA_LAUNCH_CHECK();
    block_sum_cu<<<1, 256>>>(in.data<float>(), right.data<float>());
    GNDET_CUDA_LAUNCH_CHECK();
    std::printf("sum without the barrier %g, with it %g\n", wrong.item<float>(), right.item<float>());
    return 0;
  } else if (c == "missing-record-stream" || c == "with-record-stream") {
    // A tensor made on the main stream is read by a kernel on a side stream that is still busy,
    // and freed on the host while that read is queued. Without record_stream its block goes back
    // to the main stream's cache at once, and its poisoning, queued on the idle main stream, runs
    // before the side stream gets to the read (on a GPU: the block reused under the read).
    const cuda::Stream side = cuda::stream_from_pool(0);
    const Tensor out = zeros({kN}, Device::cuda(0));
    Tensor in = full({kN}, 2.0, Device::cuda(0));
    cuda::wait_stream(side, cuda::current_stream(0));  // the side stream sees `in` filled
    {
      const cuda::StreamGuard on_side(side);
      const cudaStream_t s = static_cast<cudaStream_t>(side.handle);
      busy_cu<<<2, 128, 0, s>>>(out.data<float>(), kN, 200000);  // ~0.1 s
      GNDET_CUDA_LAUNCH_CHECK();
      copy_cu<<<2, 128, 0, s>>>(in.data<float>(), out.data<float>(), kN);
      GNDET_CUDA_LAUNCH_CHECK();
    }
    if (c == "with-record-stream") cuda::record_stream(in, side);
    in = Tensor();
    cuda::synchronize_stream(side);
    std::printf("copied %g\n", static_cast<double>(out.cpu().data<float>()[kN - 1]));
    return 0;
  } else if (c == "hang") {
    const Tensor flag = zeros({1}, TensorOptions(kInt32, Device::cuda(0)));
    wait_forever_cu<<<1, 64>>>(flag.data<int32_t>());
  } else if (c == "launch-too-many-threads") {
    noop_cu<<<1, 2048>>>(device_floats(1));
  } else if (c == "launch-grid-y") {
    noop_cu<<<dim3(1, 70000), 32>>>(device_floats(1));
  } else if (c == "launch-shared-memory") {
    noop_cu<<<1, 32, 64 << 10>>>(device_floats(1));
  } else if (c == "host-dereferences-device") {
    if (cuda::emu::describe().find("not caught") != std::string::npos) {
      std::printf("this CPU or kernel has no memory protection keys\n");
      return 77;
    }
    const Tensor t = full({16}, 3.0, Device::cuda(0));
    cuda::synchronize(0);
    const volatile float* p = t.data<float>();
    std::printf("read %g on the host\n", static_cast<double>(p[3]));  // must not get here
    return 0;
  } else {
    std::fprintf(stderr, "emulator_faults: unknown case '%s'\n", c.c_str());
    return 2;
  }
  GNDET_CUDA_LAUNCH_CHECK();
  GNDET_CUDA_CHECK(cudaDeviceSynchronize());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: emulator_faults CASE\n");
    return 2;
  }
  if (!cuda::is_emulated()) {
    std::printf("not the emulated CUDA device\n");
    return 77;
  }
  try {
    const int rc = run(argv[1]);
    if (rc == 0) std::printf("emulator_faults: %s: nothing was caught\n", argv[1]);
    return rc;
  } catch (const std::exception& e) {
    std::printf("error: %s\n", e.what());
    return 1;
  }
}
