// CUDA NMS over boxes sorted by score (ops/nms.h nms_sorted_kernel), the classic bitmask scheme:
//  1. blocks of 64 x 64 box pairs: thread i of block (row r, column c) sets bit j of
//     mask[(64 r + i) * col_blocks + c] when box 64 c + j comes after box 64 r + i and their IoU
//     is strictly greater than the threshold (the CPU's exact arithmetic, ops/cuda/box_math.cuh);
//  2. the mask goes to the host, where the greedy sweep runs in score order: box i is kept
//     unless a kept box before it suppressed it, and then suppresses its own row's bits.
// This is the CPU kernel's greedy NMS exactly (a box suppressed by a box that was itself
// suppressed does not count in either), so both keep the same positions. The sweep needs the
// whole mask anyway, and the caller needs the kept count on the host: one synchronisation.
#include <vector>

#include "ops/cuda/box_math.cuh"
#include "ops/nms.h"
#include "tensor/cuda/loops.cuh"
#include "tensor/factory.h"

namespace gndet {
namespace {

constexpr int kBoxesPerBlock = 64;  // one 64-bit mask word per (box, column block)

template <class T>
__global__ void nms_mask_cu(const T* __restrict__ boxes, uint64_t* __restrict__ mask, int64_t K, int64_t col_blocks,
                            T threshold) {
  namespace bx = cuda::boxes;
  const int64_t row_block = blockIdx.y, col_block = blockIdx.x;
  if (col_block < row_block) return;  // the sweep never reads the lower triangle
  const int64_t row_start = row_block * kBoxesPerBlock, col_start = col_block * kBoxesPerBlock;
  const int rows = static_cast<int>(K - row_start < kBoxesPerBlock ? K - row_start : kBoxesPerBlock);
  const int cols = static_cast<int>(K - col_start < kBoxesPerBlock ? K - col_start : kBoxesPerBlock);

  __shared__ T col_boxes[kBoxesPerBlock * 4];
  __shared__ T col_area[kBoxesPerBlock];
  if (static_cast<int>(threadIdx.x) < cols) {
    const T* b = boxes + 4 * (col_start + threadIdx.x);
#pragma unroll
    for (int k = 0; k < 4; ++k) col_boxes[4 * threadIdx.x + k] = b[k];
    col_area[threadIdx.x] = bx::area(b);
  }
  __syncthreads();
  if (static_cast<int>(threadIdx.x) >= rows) return;
  const int64_t i = row_start + threadIdx.x;
  const T* p = boxes + 4 * i;
  const T area_p = bx::area(p);
  uint64_t bits = 0;
  // In the diagonal block only the boxes after box i.
  for (int j = row_block == col_block ? static_cast<int>(threadIdx.x) + 1 : 0; j < cols; ++j) {
    const T* q = col_boxes + 4 * j;
    if (bx::iou(bx::intersection(p, q), area_p, col_area[j]) > threshold) bits |= uint64_t{1} << j;
  }
  mask[i * col_blocks + col_block] = bits;
}

Tensor nms_sorted_cuda(const Tensor& boxes, double iou_threshold) {
  const int64_t K = boxes.size(0);
  if (K == 0) return empty({0}, TensorOptions(kInt64, boxes.device()));
  const int64_t col_blocks = cuda::ceil_div(K, kBoxesPerBlock);
  GNDET_CHECK(col_blocks <= 65535, "nms: ", K, " boxes exceed the ", int64_t{65535} * kBoxesPerBlock,
              " one launch can compare (grid y limit)");
  const int dev = boxes.device().index;
  cuda::DeviceGuard guard(dev);
  const cudaStream_t stream = cuda::stream_for(dev);
  const Tensor mask = empty({K * col_blocks}, TensorOptions(kInt64, boxes.device()));
  // The lower triangle of blocks is never written; zero it so that the copy below moves defined bytes.
  GNDET_CUDA_CHECK(cudaMemsetAsync(mask.raw_data(), 0, static_cast<size_t>(K * col_blocks) * sizeof(uint64_t), stream));
  dispatch_floating(boxes.dtype(), "nms", [&]<class T>() {
    const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(col_blocks));
    nms_mask_cu<T><<<grid, kBoxesPerBlock, 0, stream>>>(static_cast<const T*>(boxes.raw_data()),
                                                        static_cast<uint64_t*>(mask.raw_data()), K, col_blocks,
                                                        static_cast<T>(iou_threshold));
    GNDET_CUDA_LAUNCH_CHECK();
  });
  std::vector<uint64_t> host(static_cast<size_t>(K * col_blocks));
  GNDET_CUDA_CHECK(cudaMemcpyAsync(host.data(), mask.raw_data(), host.size() * sizeof(uint64_t),
                                   cudaMemcpyDeviceToHost, stream));
  GNDET_CUDA_CHECK(cudaStreamSynchronize(stream));

  std::vector<uint64_t> removed(static_cast<size_t>(col_blocks), 0);
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < K; ++i) {
    const int64_t block = i / kBoxesPerBlock, bit = i % kBoxesPerBlock;
    if (removed[block] & (uint64_t{1} << bit)) continue;
    keep.push_back(i);
    const uint64_t* row = host.data() + i * col_blocks;
    for (int64_t c = block; c < col_blocks; ++c) removed[c] |= row[c];
  }
  return from_data<int64_t>(keep).to(boxes.device());
}

}  // namespace

GNDET_REGISTER_KERNEL(nms_sorted_kernel, CUDA, nms_sorted_cuda);

}  // namespace gndet
