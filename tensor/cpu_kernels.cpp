// CPU fill and copy (with broadcasting and dtype conversion).
#include "tensor/cpu_loop.h"
#include "tensor/kernels.h"

namespace gndet {
namespace {

void fill_cpu(const Tensor& dst, double value) {
  const Tensor* none = nullptr;
  const StridedPlan p = make_plan(dst, &none, 0, "fill_");
  dispatch_storage(dst.dtype(), "fill_", [&]<class T>() {
    T* out = static_cast<T*>(dst.raw_data());
    const T v = static_cast<T>(value);
    cpu::for_each_row(p, [&](const int64_t* off, const int64_t* st, int64_t n) {
      T* o = out + off[0];
      if (st[0] == 1) {
        std::fill(o, o + n, v);
      } else {
        for (int64_t i = 0; i < n; ++i) o[i * st[0]] = v;
      }
    });
  });
}

void copy_cpu(const Tensor& dst, const Tensor& src) {
  GNDET_CHECK(dst.device().is_cpu() && src.device().is_cpu(), "copy_: CPU kernel got ", dst.device().str(), " <- ",
              src.device().str());
  const Tensor* inputs[] = {&src};
  const StridedPlan p = make_plan(dst, inputs, 1, "copy_");
  dispatch_storage(dst.dtype(), "copy_", [&]<class D>() {
    dispatch_storage(src.dtype(), "copy_", [&]<class S>() {
      D* out = static_cast<D*>(dst.raw_data());
      const S* in = static_cast<const S*>(src.raw_data());
      cpu::for_each_row(p, [&](const int64_t* off, const int64_t* st, int64_t n) {
        D* o = out + off[0];
        const S* s = in + off[1];
        if (st[0] == 1 && st[1] == 1) {
          for (int64_t i = 0; i < n; ++i) o[i] = static_cast<D>(s[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) o[i * st[0]] = static_cast<D>(s[i * st[1]]);
        }
      });
    });
  });
}

}  // namespace

GNDET_DEFINE_KERNEL(fill_kernel, void(const Tensor& dst, double value));
GNDET_DEFINE_KERNEL(copy_kernel, void(const Tensor& dst, const Tensor& src));
GNDET_REGISTER_KERNEL(fill_kernel, CPU, fill_cpu);
GNDET_REGISTER_KERNEL(copy_kernel, CPU, copy_cpu);

}  // namespace gndet
