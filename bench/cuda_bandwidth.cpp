// Memory-bound GPU kernels against the device's own copy bandwidth, measured in the same run:
// a device-to-device cudaMemcpyAsync of 2^26 floats (bytes read + written) is the reference;
// elementwise add / relu on 2^26 floats and sums over rows, columns and everything report their
// achieved GB/s (bytes each must move at least once) and the ratio to the copy.
// Target (README of the CUDA backend): add >= 0.80 of the copy.
#include <cstdio>
#include <string>

#include "bench/cuda_timer.h"
#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "tensor/factory.h"
#include "tensor/random.h"

using namespace gndet;

namespace {

struct Row {
  std::string name;
  double bytes;
  double ms;
};

void print_row(const Row& r, double copy_gbps) {
  const double gbps = r.bytes / (r.ms * 1e-3) / 1e9;
  std::printf("%-40s %9.1f MB %9.3f ms %9.1f GB/s %7.2f\n", r.name.c_str(), r.bytes / 1e6, r.ms, gbps,
              copy_gbps > 0 ? gbps / copy_gbps : 1.0);
}

}  // namespace

int main() {
  try {
    if (!cuda::is_available()) {
      std::fprintf(stderr, "cuda_bandwidth: no CUDA GPU present\n");
      return 2;
    }
    bench::print_header("gndet CUDA bandwidth benchmark (median of 20 runs after 3 warm-ups, CUDA events)");
    const Device gpu = Device::cuda(0);
    constexpr int64_t n = int64_t{1} << 26;
    const double fbytes = static_cast<double>(n) * sizeof(float);
    Generator gen(1);
    // Random data, not zeros: some hardware compresses zero pages.
    const Tensor a = rand({n}, gen, TensorOptions(kFloat32, gpu)) - 0.5;
    const Tensor b = rand({n}, gen, TensorOptions(kFloat32, gpu)) + 0.5;
    Tensor out = empty({n}, gpu);

    const double copy_ms = bench::median_ms([&] {
      GNDET_CUDA_CHECK(cudaMemcpyAsync(out.raw_data(), a.raw_data(), n * sizeof(float), cudaMemcpyDeviceToDevice,
                                       cuda::stream_for(0)));
    });
    const double copy_gbps = 2 * fbytes / (copy_ms * 1e-3) / 1e9;

    std::vector<Row> rows;
    rows.push_back({"add, 2^26 float (read 2, write 1)", 3 * fbytes,
                    bench::median_ms([&] { binary_kernel(gpu, BinaryOp::Add, out, a, b); })});
    rows.push_back({"relu, 2^26 float (read 1, write 1)", 2 * fbytes,
                    bench::median_ms([&] { unary_kernel(gpu, UnaryOp::Relu, 0, 0, out, a); })});
    const Tensor bias = rand({1, 4096}, gen, TensorOptions(kFloat32, gpu));
    const Tensor a2 = make_view(a, {n / 4096, 4096}, {4096, 1}, 0);
    Tensor out2 = make_view(out, {n / 4096, 4096}, {4096, 1}, 0);
    rows.push_back({"add row bias (16384, 4096) (strided path)", 2 * fbytes,
                    bench::median_ms([&] { binary_kernel(gpu, BinaryOp::Add, out2, a2, bias); })});

    Tensor rsum = empty({4096}, gpu);
    rows.push_back({"sum rows (4096, 16384) -> 4096", fbytes, bench::median_ms([&] {
                      sum_rows_kernel(gpu, rsum, make_view(a, {4096, n / 4096}, {n / 4096, 1}, 0), 1.0);
                    })});
    Tensor one = empty({1}, gpu);
    rows.push_back({"sum all (1, 2^26) -> 1 (chunked)", fbytes,
                    bench::median_ms([&] { sum_rows_kernel(gpu, one, make_view(a, {1, n}, {n, 1}, 0), 1.0); })});
    rows.push_back({"sum cols (16384, 4096) -> 4096", fbytes, bench::median_ms([&] {
                      sum_cols_kernel(gpu, rsum, make_view(a, {n / 4096, 4096}, {4096, 1}, 0), 1.0);
                    })});
    const Tensor logits = make_view(a, {n / 128, 128}, {128, 1}, 0);
    Tensor probs = make_view(out, {n / 128, 128}, {128, 1}, 0);
    rows.push_back({"softmax rows (524288, 128) (read 1, write 1)", 2 * fbytes,
                    bench::median_ms([&] { softmax_rows_kernel(gpu, probs, logits, false); })});

    std::printf("%-40s %12s %12s %14s %7s\n", "kernel", "bytes", "median", "bandwidth", "vs copy");
    print_row({"cudaMemcpy D2D 2^26 float (read + write)", 2 * fbytes, copy_ms}, copy_gbps);
    for (const Row& r : rows) print_row(r, copy_gbps);
    const double add_ratio = rows[0].bytes / (rows[0].ms * 1e-3) / 1e9 / copy_gbps;
    std::printf("\ntarget: add >= 0.80 of the copy bandwidth: %.2f, %s\n", add_ratio, add_ratio >= 0.8 ? "met" : "NOT met");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cuda_bandwidth: %s\n", e.what());
    return 1;
  }
}
