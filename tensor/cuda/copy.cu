// CUDA fill and copy (tensor/kernels.h). copy_kernel's CUDA slot runs whenever either side is on a
// GPU, so it also moves data between host and device and between devices:
//
//   device <- device (same GPU)   one strided kernel (broadcast + dtype conversion), or a plain
//                                 cudaMemcpyAsync when both sides are dense and alike
//   device <- host                the host side made contiguous, copied raw, then converted /
//                                 broadcast / scattered on the device if dst needs it
//   host   <- device              converted on the device into dst's layout when dst is contiguous,
//                                 else copied raw and finished by the CPU copy kernel
//   device <- other device        peer copy of a contiguous version, then as above
#include <cmath>

#include "tensor/cuda/loops.cuh"
#include "tensor/cuda/transfer.h"
#include "tensor/factory.h"
#include "tensor/kernels.h"

namespace gndet {
namespace {

using cuda::DeviceGuard;

template <class T>
struct Constant {
  T value;
  __device__ T operator()() const { return value; }
};

template <class D, class S>
struct Convert {
  __device__ D operator()(S x) const { return static_cast<D>(x); }
};

bool dense_alike(const Tensor& dst, const Tensor& src) {
  return dst.dtype() == src.dtype() && dst.shape() == src.shape() && dst.is_contiguous() && src.is_contiguous();
}

void fill_cuda(const Tensor& dst, double value) {
  const Tensor* none = nullptr;
  const StridedPlan p = make_plan(dst, &none, 0, "fill_");
  if (p.numel == 0) return;
  const int dev = dst.device().index;
  DeviceGuard guard(dev);
  // All-zero bytes are 0 in every dtype (+0.0 for floats): let the copy engine do it.
  if (p.contiguous && value == 0.0 && !std::signbit(value)) {
    GNDET_CUDA_CHECK(cudaMemsetAsync(dst.raw_data(), 0, static_cast<size_t>(p.numel) * dst.element_size(),
                                     cuda::stream_for(dev)));
    return;
  }
  dispatch_storage(dst.dtype(), "fill_", [&]<class T>() {
    cuda::launch_elementwise(p, dev, Constant<T>{static_cast<T>(value)}, static_cast<T*>(dst.raw_data()));
  });
}

// dst <- src, both on the same GPU.
void copy_on_device(const Tensor& dst, const Tensor& src) {
  const int dev = dst.device().index;
  DeviceGuard guard(dev);
  if (dense_alike(dst, src)) {
    if (dst.raw_data() != src.raw_data()) {
      GNDET_CUDA_CHECK(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), static_cast<size_t>(dst.numel()) * dst.element_size(),
                                       cudaMemcpyDeviceToDevice, cuda::stream_for(dev)));
    }
    return;
  }
  const Tensor* inputs[] = {&src};
  const StridedPlan p = make_plan(dst, inputs, 1, "copy_");
  dispatch_storage(dst.dtype(), "copy_", [&]<class D>() {
    dispatch_storage(src.dtype(), "copy_", [&]<class S>() {
      cuda::launch_elementwise(p, dev, Convert<D, S>{}, static_cast<D*>(dst.raw_data()),
                               static_cast<const S*>(src.raw_data()));
    });
  });
}

size_t nbytes_of(const Tensor& t) { return static_cast<size_t>(t.numel()) * t.element_size(); }

void copy_host_to_device(const Tensor& dst, const Tensor& src) {
  const Tensor host = src.detach().contiguous();  // detach: no graph is built inside copy_
  if (dense_alike(dst, host)) {
    cuda::copy_host_to_device(dst.raw_data(), host.raw_data(), nbytes_of(dst), dst.device().index);
    return;
  }
  // Ship src as it is (fewest bytes over the bus), then broadcast / convert / scatter on the GPU.
  const Tensor staged = empty(host.shape(), TensorOptions(host.dtype(), dst.device()));
  cuda::copy_host_to_device(staged.raw_data(), host.raw_data(), nbytes_of(host), dst.device().index);
  copy_on_device(dst, staged);
}

void copy_device_to_host(const Tensor& dst, const Tensor& src) {
  const int dev = src.device().index;
  if (dst.is_contiguous()) {
    if (dense_alike(dst, src)) {
      cuda::copy_device_to_host(dst.raw_data(), src.raw_data(), nbytes_of(dst), dev);
      return;
    }
    const Tensor shaped = empty(dst.shape(), TensorOptions(dst.dtype(), src.device()));
    copy_on_device(shaped, src);
    cuda::copy_device_to_host(dst.raw_data(), shaped.raw_data(), nbytes_of(dst), dev);
    return;
  }
  Tensor dense = src.detach();
  if (!dense.is_contiguous()) {
    dense = empty(src.shape(), src.options());
    copy_on_device(dense, src);
  }
  const Tensor host = empty(src.shape(), src.dtype());
  cuda::copy_device_to_host(host.raw_data(), dense.raw_data(), nbytes_of(host), dev);
  copy_kernel(kCPU, dst, host);
}

void copy_between_devices(const Tensor& dst, const Tensor& src) {
  const int from = src.device().index, to = dst.device().index;
  Tensor dense = src.detach();
  if (!dense.is_contiguous()) {
    dense = empty(src.shape(), src.options());
    copy_on_device(dense, src);
  }
  {
    // The peer copy runs on dst's stream, which knows nothing of src's: let src's work finish.
    DeviceGuard guard(from);
    GNDET_CUDA_CHECK(cudaStreamSynchronize(cuda::stream_for(from)));
  }
  DeviceGuard guard(to);
  const cudaStream_t stream = cuda::stream_for(to);
  const Tensor target = dense_alike(dst, dense) ? dst : empty(dense.shape(), TensorOptions(dense.dtype(), dst.device()));
  GNDET_CUDA_CHECK(cudaMemcpyPeerAsync(target.raw_data(), to, dense.raw_data(), from, nbytes_of(dense), stream));
  if (!target.is_same(dst)) copy_on_device(dst, target);
  // `dense` may be freed and reused on src's stream as soon as we return.
  GNDET_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void copy_cuda(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  GNDET_CHECK(src.numel() > 0, "copy_: cannot broadcast an empty tensor of shape ", shape_str(src.shape()), " to ",
              shape_str(dst.shape()));
  if (dst.is_cuda() && src.is_cuda()) {
    if (dst.device() == src.device()) {
      copy_on_device(dst, src);
    } else {
      copy_between_devices(dst, src);
    }
  } else if (dst.is_cuda()) {
    copy_host_to_device(dst, src);
  } else {
    copy_device_to_host(dst, src);
  }
}

}  // namespace

GNDET_REGISTER_KERNEL(fill_kernel, CUDA, fill_cuda);
GNDET_REGISTER_KERNEL(copy_kernel, CUDA, copy_cuda);

}  // namespace gndet
