// tensor/cuda_api.h in a build without CUDA: the same functions, each raising a clear error
// (the TF32 switch is a setting with no effect here, so it does not throw).
#include "tensor/cuda_api.h"

namespace gndet::cuda {

namespace {
[[noreturn]] void no_cuda(const char* what) {
  GNDET_FAIL(what, ": gndet was built without CUDA (reconfigure with -Dcuda=enabled on a machine with the CUDA toolkit)");
}
}  // namespace

MemoryStats memory_stats(int) { no_cuda("cuda::memory_stats"); }
void reset_peak_memory_stats(int) { no_cuda("cuda::reset_peak_memory_stats"); }
void empty_cache(int) { no_cuda("cuda::empty_cache"); }
std::string memory_summary(int) { no_cuda("cuda::memory_summary"); }

Stream current_stream(int) { no_cuda("cuda::current_stream"); }
Stream stream_from_pool(int) { no_cuda("cuda::stream_from_pool"); }
void synchronize_stream(Stream) { no_cuda("cuda::synchronize_stream"); }
void wait_stream(Stream, Stream) { no_cuda("cuda::wait_stream"); }
void record_stream(const Tensor&, Stream) { no_cuda("cuda::record_stream"); }
StreamGuard::StreamGuard(Stream) { no_cuda("cuda::StreamGuard"); }
StreamGuard::~StreamGuard() = default;

Tensor empty_pinned(const Shape&, DType) { no_cuda("cuda::empty_pinned"); }
bool is_pinned(const Tensor&) { return false; }

void set_allow_tf32(bool) {}
bool allow_tf32() { return false; }

}  // namespace gndet::cuda
