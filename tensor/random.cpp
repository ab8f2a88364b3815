#include "tensor/random.h"

#include <bit>
#include <cmath>
#include <numbers>
#include <sstream>

#include "tensor/factory.h"

namespace gndet {

namespace {
// Below this many numbers a parallel region costs more than it saves.
constexpr int64_t kParallelDraws = 1 << 15;

void box_muller(double u1, double u2, double* z0, double* z1) {
  const double r = std::sqrt(-2.0 * std::log(u1));
  const double theta = 2.0 * std::numbers::pi * u2;
  *z0 = r * std::cos(theta);
  *z1 = r * std::sin(theta);
}
}  // namespace

void Generator::manual_seed(uint64_t seed) {
  seed_ = seed;
  offset_ = 0;
  has_spare_normal_ = false;
}

double Generator::uniform() { return to_uniform(next_u64()); }

double Generator::normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  const double u1 = uniform(), u2 = uniform();
  double z0, z1;
  box_muller(u1, u2, &z0, &z1);
  spare_normal_ = z1;
  has_spare_normal_ = true;
  return z0;
}

int64_t Generator::randint(int64_t low, int64_t high) {
  GNDET_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
  const uint64_t range = static_cast<uint64_t>(high - low);
  // Rejection sampling removes the modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t x = next_u64();
  while (x >= limit) x = next_u64();
  return low + static_cast<int64_t>(x % range);
}

template <class T>
void Generator::fill_uniform(T* out, int64_t n) {
  const uint64_t seed = seed_, base = offset_;
#pragma omp parallel for schedule(static) if (n >= kParallelDraws)
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<T>(to_uniform(number(seed, base + static_cast<uint64_t>(i))));
  offset_ += static_cast<uint64_t>(n);
}

template <class T>
void Generator::fill_normal(T* out, int64_t n) {
  const uint64_t seed = seed_, base = offset_;
  const int64_t pairs = (n + 1) / 2;
#pragma omp parallel for schedule(static) if (n >= kParallelDraws)
  for (int64_t j = 0; j < pairs; ++j) {
    const uint64_t k = base + 2 * static_cast<uint64_t>(j);
    double z0, z1;
    box_muller(to_uniform(number(seed, k)), to_uniform(number(seed, k + 1)), &z0, &z1);
    out[2 * j] = static_cast<T>(z0);
    if (2 * j + 1 < n) out[2 * j + 1] = static_cast<T>(z1);
  }
  offset_ += 2 * static_cast<uint64_t>(pairs);
}

template void Generator::fill_uniform<float>(float*, int64_t);
template void Generator::fill_uniform<double>(double*, int64_t);
template void Generator::fill_normal<float>(float*, int64_t);
template void Generator::fill_normal<double>(double*, int64_t);

// The spare normal is stored by its bits: exact, and independent of stream float formatting.
std::string Generator::state() const {
  std::ostringstream os;
  os << seed_ << ' ' << offset_ << ' ' << has_spare_normal_ << ' ' << std::bit_cast<uint64_t>(spare_normal_);
  return os.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream is(state);
  uint64_t seed = 0, offset = 0, spare_bits = 0;
  bool has_spare = false;
  is >> seed >> offset >> has_spare >> spare_bits;
  GNDET_CHECK(!is.fail(), "Generator::set_state: malformed state string");
  seed_ = seed;
  offset_ = offset;
  has_spare_normal_ = has_spare;
  spare_normal_ = std::bit_cast<double>(spare_bits);
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}
void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

Tensor rand(const Shape& shape, Generator& gen, TensorOptions options) {
  Tensor host = empty(shape, options.dtype);
  dispatch_floating(options.dtype, "rand", [&]<class T>() { gen.fill_uniform(host.data<T>(), host.numel()); });
  return host.to(options.device);
}

Tensor randn(const Shape& shape, Generator& gen, TensorOptions options) {
  Tensor host = empty(shape, options.dtype);
  dispatch_floating(options.dtype, "randn", [&]<class T>() { gen.fill_normal(host.data<T>(), host.numel()); });
  return host.to(options.device);
}

Tensor rand(const Shape& shape, TensorOptions options) { return rand(shape, default_generator(), options); }
Tensor randn(const Shape& shape, TensorOptions options) { return randn(shape, default_generator(), options); }

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, TensorOptions options) {
  Tensor host = empty(shape, kInt64);
  int64_t* p = host.data<int64_t>();
  for (int64_t i = 0; i < host.numel(); ++i) p[i] = gen.randint(low, high);
  return host.to(options);
}

Tensor randperm(int64_t n, Generator& gen, TensorOptions options) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[gen.randint(0, i + 1)]);  // Fisher-Yates
  return from_data<int64_t>(perm, {n}).to(options);
}

}  // namespace gndet
