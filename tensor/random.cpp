#include "tensor/random.h"

#include <bit>
#include <cmath>
#include <numbers>
#include <sstream>

#include "tensor/factory.h"

namespace gndet {

void Generator::manual_seed(uint64_t seed) {
  seed_ = seed;
  engine_.seed(seed);
  has_spare_normal_ = false;
}

double Generator::uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

double Generator::normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  double u1 = uniform();
  while (u1 <= 0.0) u1 = uniform();  // log(0) is -inf
  const double u2 = uniform();
  const double r = std::sqrt(-2.0 * std::log(u1));
  spare_normal_ = r * std::sin(2.0 * std::numbers::pi * u2);
  has_spare_normal_ = true;
  return r * std::cos(2.0 * std::numbers::pi * u2);
}

int64_t Generator::randint(int64_t low, int64_t high) {
  GNDET_CHECK(high > low, "randint: empty range [", low, ", ", high, ")");
  const uint64_t range = static_cast<uint64_t>(high - low);
  // Rejection sampling removes the modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t x = engine_();
  while (x >= limit) x = engine_();
  return low + static_cast<int64_t>(x % range);
}

// The spare normal is stored by its bits: exact, and independent of stream float formatting.
std::string Generator::state() const {
  std::ostringstream os;
  os << seed_ << ' ' << has_spare_normal_ << ' ' << std::bit_cast<uint64_t>(spare_normal_) << ' ' << engine_;
  return os.str();
}

void Generator::set_state(const std::string& state) {
  std::istringstream is(state);
  uint64_t seed = 0, spare_bits = 0;
  bool has_spare = false;
  std::mt19937_64 engine;
  is >> seed >> has_spare >> spare_bits >> engine;
  GNDET_CHECK(!is.fail(), "Generator::set_state: malformed state string");
  seed_ = seed;
  has_spare_normal_ = has_spare;
  spare_normal_ = std::bit_cast<double>(spare_bits);
  engine_ = engine;
}

Generator& default_generator() {
  static Generator gen(0);
  return gen;
}
void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

namespace {
template <class Draw>
Tensor generate(const Shape& shape, TensorOptions options, const char* op, Draw draw) {
  Tensor host = empty(shape, options.dtype);
  dispatch_numeric(options.dtype, op, [&]<class T>() {
    T* p = host.data<T>();
    const int64_t n = host.numel();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(draw());
  });
  return host.to(options.device);
}
}  // namespace

Tensor rand(const Shape& shape, Generator& gen, TensorOptions options) {
  GNDET_CHECK(is_floating(options.dtype), "rand: dtype must be floating, got ", dtype_name(options.dtype));
  return generate(shape, options, "rand", [&] { return gen.uniform(); });
}
Tensor randn(const Shape& shape, Generator& gen, TensorOptions options) {
  GNDET_CHECK(is_floating(options.dtype), "randn: dtype must be floating, got ", dtype_name(options.dtype));
  return generate(shape, options, "randn", [&] { return gen.normal(); });
}
Tensor rand(const Shape& shape, TensorOptions options) { return rand(shape, default_generator(), options); }
Tensor randn(const Shape& shape, TensorOptions options) { return randn(shape, default_generator(), options); }
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen, TensorOptions options) {
  return generate(shape, options, "randint", [&] { return gen.randint(low, high); });
}

Tensor randperm(int64_t n, Generator& gen, TensorOptions options) {
  std::vector<int64_t> perm(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) perm[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(perm[i], perm[gen.randint(0, i + 1)]);  // Fisher-Yates
  return from_data<int64_t>(perm, {n}).to(options);
}

}  // namespace gndet
