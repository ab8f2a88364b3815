// Box overlap arithmetic for the CUDA box_iou and NMS kernels, written to give exactly the CPU
// kernels' numbers (ops/cpu/box_iou.cpp, ops/cpu/nms.cpp): the same operations in the same order,
// each rounded on its own (__fmul_rn & co.), so that nvcc cannot fuse a product and a sum into
// one FMA. The CPU build has no FMA contraction (x86-64 baseline, ISO C++ mode), so an IoU right
// at a threshold (MaxIoU assigner 0.7 / 0.3 / 0.5, NMS 0.7) lands on the same side on both
// devices and both keep the same boxes.
#pragma once

namespace gndet::cuda::boxes {

__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ float div(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ double div(double a, double b) { return __ddiv_rn(a, b); }

// std::max / std::min exactly (their NaN behaviour included).
template <class T>
__device__ __forceinline__ T max_of(T a, T b) {
  return a < b ? b : a;
}
template <class T>
__device__ __forceinline__ T min_of(T a, T b) {
  return b < a ? b : a;
}

// (x2 - x1) * (y2 - y1) of box p = (x1, y1, x2, y2).
template <class T>
__device__ __forceinline__ T area(const T* p) {
  return mul(sub(p[2], p[0]), sub(p[3], p[1]));
}

// Intersection area of boxes p and q, widths clamped at 0.
template <class T>
__device__ __forceinline__ T intersection(const T* p, const T* q) {
  const T w = max_of(sub(min_of(p[2], q[2]), max_of(p[0], q[0])), T(0));
  const T h = max_of(sub(min_of(p[3], q[3]), max_of(p[1], q[1])), T(0));
  return mul(w, h);
}

// inter / max(area_p + area_q - inter, 1e-6): the CPU's IoU, in its order of operations.
template <class T>
__device__ __forceinline__ T iou(T inter, T area_p, T area_q) {
  return div(inter, max_of(sub(add(area_p, area_q), inter), T(1e-6)));
}

}  // namespace gndet::cuda::boxes
