// Helpers of the CUDA parity tests: random inputs that are never zero, poisoned outputs, and
// element-wise comparisons of a GPU result with the CPU kernel's result.
#pragma once

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "tensor/cuda_api.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

namespace gndet::test {

inline Device gpu() { return Device::cuda(0); }

// Values with |x| in [lo, hi) and a random sign (or only positive), in `dtype`; integers are
// rounded away from zero so that none is 0. bool: random true / false.
inline Tensor random_nonzero(const Shape& shape, uint64_t seed, DType dtype = kFloat32, double lo = 0.25,
                             double hi = 3.0, bool positive = false) {
  Generator gen(seed);
  Tensor t = empty(shape, TensorOptions(dtype));
  dispatch_all(dtype, "random_nonzero", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0; i < t.numel(); ++i) {
      const double mag = lo + (hi - lo) * gen.uniform();
      const bool neg = !positive && gen.uniform() < 0.5;
      if constexpr (std::is_same_v<T, bool>) {
        p[i] = neg;
      } else if constexpr (std::is_floating_point_v<T>) {
        p[i] = static_cast<T>(neg ? -mag : mag);
      } else if constexpr (std::is_unsigned_v<T>) {
        p[i] = static_cast<T>(std::ceil(mag));
      } else {
        p[i] = static_cast<T>(neg ? -std::ceil(mag) : std::ceil(mag));
      }
    }
  });
  return t;
}

// Integers in [lo, hi) (as `dtype`): index tensors and tie-heavy sort inputs.
inline Tensor random_ints(const Shape& shape, uint64_t seed, int64_t lo, int64_t hi, DType dtype = kInt64) {
  Generator gen(seed);
  return randint(lo, hi, shape, gen, dtype);
}

// An uninitialised tensor filled with poison (NaN, or 0x5A for integers).
inline Tensor poisoned(const Shape& shape, TensorOptions options) {
  Tensor t = empty(shape, options);
  poison(t);
  return t;
}

// The same view (sizes, strides, offset) of a copy of t's whole storage on `device`: a strided
// or broadcast CPU operand stays strided on the GPU (t.to(device) would make it contiguous).
inline Tensor mirror(const Tensor& t, Device device) {
  const int64_t n = static_cast<int64_t>(t.storage()->nbytes() / t.element_size());
  const Tensor moved = make_view(t, {n}, {1}, 0).to(device);
  return make_view(moved, t.shape(), t.strides(), t.offset());
}

// Compares element-wise after converting both to double on the host:
// |got - want| <= atol + rtol * |want|, NaN exactly where `want` has NaN, infinities equal.
// Reports the number of mismatches and the first few.
inline void check_close(const Tensor& got, const Tensor& want, double atol, double rtol, const std::string& what = "") {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  int64_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < g.size(); ++i) {
    bool ok;
    if (std::isnan(w[i]) || std::isnan(g[i])) {
      ok = std::isnan(w[i]) && std::isnan(g[i]);
    } else if (std::isinf(w[i]) || std::isinf(g[i])) {
      ok = g[i] == w[i];
    } else {
      ok = std::abs(g[i] - w[i]) <= atol + rtol * std::abs(w[i]);
    }
    if (!ok && bad++ < 5) first << "  [" << i << "] got " << g[i] << ", want " << w[i] << "\n";
  }
  INFO(bad << " of " << g.size() << " elements differ; first:\n" << first.str());
  CHECK(bad == 0);
}

// Exact equality, NaN equal to NaN and the sign of zero compared too (sort, max, copies).
inline void check_equal(const Tensor& got, const Tensor& want, const std::string& what = "") {
  INFO(what);
  REQUIRE(got.shape() == want.shape());
  REQUIRE(got.dtype() == want.dtype());
  const std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  int64_t bad = 0;
  std::ostringstream first;
  for (size_t i = 0; i < g.size(); ++i) {
    const bool ok = (std::isnan(g[i]) && std::isnan(w[i])) || (g[i] == w[i] && std::signbit(g[i]) == std::signbit(w[i]));
    if (!ok && bad++ < 5) first << "  [" << i << "] got " << g[i] << ", want " << w[i] << "\n";
  }
  INFO(bad << " of " << g.size() << " elements differ; first:\n" << first.str());
  CHECK(bad == 0);
}

// Turns TF32 off for its scope, so that float32 GEMMs are exact FP32 (parity tests).
class NoTf32Guard {
 public:
  NoTf32Guard() : prev_(cuda::allow_tf32()) { cuda::set_allow_tf32(false); }
  ~NoTf32Guard() { cuda::set_allow_tf32(prev_); }
  NoTf32Guard(const NoTf32Guard&) = delete;
  NoTf32Guard& operator=(const NoTf32Guard&) = delete;

 private:
  bool prev_;
};

inline const std::vector<DType>& all_dtypes() {
  static const std::vector<DType> d = {kFloat32, kFloat64, kInt64, kInt32, kUInt8, kBool};
  return d;
}

}  // namespace gndet::test
