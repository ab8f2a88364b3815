// Mixed precision on the CPU: the bfloat16 / float16 conversions (against a brute-force search
// for the nearest representable value), 16-bit tensors as storage, and the autocast policy of
// conv2d, conv_transpose2d, linear and bmm / matmul (ops/autocast.h) against float64 products of the rounded
// operands.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "autograd/gradcheck.h"
#include "ops/autocast.h"
#include "ops/conv.h"
#include "ops/elementwise.h"
#include "ops/linalg.h"
#include "ops/linear.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;

namespace {

float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

float decode(DType dt, uint16_t b) { return dt == kBFloat16 ? float(BFloat16::from_bits(b)) : float(Float16::from_bits(b)); }
uint16_t encode(DType dt, float f) { return dt == kBFloat16 ? BFloat16(f).bits : Float16(f).bits; }
float round_to(DType dt, float f) { return decode(dt, encode(dt, f)); }

// Every finite non-negative value of the type, ascending, with its bit pattern; then +inf placed
// where IEEE rounding puts it: one ulp above the largest finite value, with an even mantissa (the
// largest finite has an odd one), so that a tie between them goes to inf.
struct Grid {
  std::vector<double> value;
  std::vector<uint16_t> bits;
};
Grid positive_grid(DType dt) {
  Grid g;
  for (uint32_t b = 0; b < 0x8000; ++b) {
    const float v = decode(dt, static_cast<uint16_t>(b));
    if (!std::isfinite(v)) break;  // exponent all ones: inf, then NaNs
    g.value.push_back(v);
    g.bits.push_back(static_cast<uint16_t>(b));
  }
  const double ulp = g.value.back() - g.value[g.value.size() - 2];
  g.value.push_back(g.value.back() + ulp);
  g.bits.push_back(dt == kBFloat16 ? 0x7f80 : 0x7c00);
  return g;
}

// The correctly rounded pattern of |f| by search: the nearer neighbour, ties to the even pattern.
uint16_t nearest(const Grid& g, double a) {
  const auto it = std::lower_bound(g.value.begin(), g.value.end(), a);
  if (it == g.value.end()) return g.bits.back();  // beyond the inf point
  const size_t hi = static_cast<size_t>(it - g.value.begin());
  if (g.value[hi] == a || hi == 0) return g.bits[hi];
  const double d_lo = a - g.value[hi - 1], d_hi = g.value[hi] - a;
  if (d_lo < d_hi) return g.bits[hi - 1];
  if (d_hi < d_lo) return g.bits[hi];
  return (g.bits[hi] & 1) == 0 ? g.bits[hi] : g.bits[hi - 1];
}

// The distance between two neighbours of the type around |v| (float16: subnormal spacing 2^-24).
double ulp(DType dt, double v) {
  const int mantissa_bits = dt == kBFloat16 ? 7 : 10;
  const int e = std::max(std::ilogb(std::max(std::abs(v), 1e-38)), dt == kBFloat16 ? -126 : -14);
  return std::ldexp(1.0, e - mantissa_bits);
}

// t rounded element-wise to dt (by the scalar conversions, checked above), as float64.
Tensor rounded64(const Tensor& t, DType dt) {
  std::vector<float> v = t.to_vector<float>();
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = round_to(dt, v[i]);
  return from_data(out, t.shape());
}

}  // namespace

TEST_CASE("bfloat16 and float16 round float32 to the nearest value, ties to even", "[autocast][half]") {
  for (const DType dt : {kBFloat16, kFloat16}) {
    INFO(dtype_name(dt));
    const Grid g = positive_grid(dt);
    // Every pattern survives the round trip (NaNs stay NaN, with the sign).
    int64_t bad = 0;
    for (uint32_t b = 0; b < 0x10000; ++b) {
      const float v = decode(dt, static_cast<uint16_t>(b));
      if (std::isnan(v)) {
        bad += !std::isnan(decode(dt, encode(dt, v)));
      } else {
        bad += encode(dt, v) != b;
      }
    }
    CHECK(bad == 0);
    // Random floats of every magnitude, the midpoints between neighbours (the ties) and the points
    // a quarter ulp beside them, each against the search.
    std::vector<float> probes;
    Generator gen(11);
    for (int i = 0; i < 200000; ++i) {
      const uint32_t r = static_cast<uint32_t>(gen.uniform() * 4294967296.0);
      const float f = float_of(r & 0x7fffffffu);
      if (std::isfinite(f)) probes.push_back(f);
    }
    for (size_t i = 0; i + 1 < g.value.size(); i += 7) {
      const double mid = 0.5 * (g.value[i] + g.value[i + 1]);
      for (const double d : {0.0, 0.25, -0.25}) probes.push_back(static_cast<float>(mid + d * (g.value[i + 1] - g.value[i])));
    }
    bad = 0;
    for (const float f : probes) {
      for (const float s : {f, -f}) {
        const uint16_t want = static_cast<uint16_t>(nearest(g, std::abs(static_cast<double>(s))) | (std::signbit(s) ? 0x8000 : 0));
        if (encode(dt, s) != want && bad++ < 5) WARN("f = " << s << ": got bits " << encode(dt, s) << ", want " << want);
      }
    }
    CHECK(bad == 0);
#if defined(__FLT16_MAX__)
    // A second, independent reference for float16: the compiler's own _Float16 conversion
    // (libgcc's IEEE round-to-nearest-even), on the same probes.
    if (dt == kFloat16) {
      int64_t differ = 0;
      for (const float f : probes) {
        for (const float s : {f, -f}) {
          const _Float16 h = static_cast<_Float16>(s);
          uint16_t b;
          std::memcpy(&b, &h, 2);
          differ += b != encode(dt, s);
        }
      }
      CHECK(differ == 0);
    }
#endif
    CHECK(std::isnan(decode(dt, encode(dt, std::numeric_limits<float>::quiet_NaN()))));
    CHECK(std::signbit(decode(dt, encode(dt, -0.0f))));
    CHECK(decode(dt, encode(dt, -INFINITY)) == -INFINITY);
  }
  // The edges that make float16 need a loss scaler.
  CHECK(float(Float16(65504.0f)) == 65504.0f);
  CHECK(float(Float16(65519.99f)) == 65504.0f);
  CHECK(float(Float16(65520.0f)) == INFINITY);  // the tie above the largest finite value
  CHECK(float(Float16(0x1p-25f)) == 0.0f);      // the tie below the smallest subnormal: to even (0)
  CHECK(float(Float16(0x1.8p-25f)) == 0x1p-24f);
  CHECK(float(BFloat16(1.0f + 0x1p-8f)) == 1.0f);  // tie: to even
  CHECK(float(BFloat16(1.0f + 0x1.8p-8f)) == 1.0f + 0x1p-7f);
}

TEST_CASE("16-bit tensors store, convert and refuse arithmetic with a clear error", "[autocast][half]") {
  Generator gen(5);
  const Tensor x = randn({4, 5}, gen) * 100.0;
  for (const DType dt : {kBFloat16, kFloat16}) {
    INFO(dtype_name(dt));
    const Tensor h = x.to(dt);
    CHECK(h.dtype() == dt);
    CHECK(h.element_size() == 2);
    const std::vector<float> back = h.to_vector<float>(), src = x.to_vector<float>();
    int64_t bad = 0;
    for (size_t i = 0; i < src.size(); ++i) bad += back[i] != round_to(dt, src[i]);
    CHECK(bad == 0);
    CHECK(h.to(kFloat64).to_vector<double>() == std::vector<double>(back.begin(), back.end()));
    // A strided (transposed) source, and fill_.
    CHECK(x.t().to(dt).to(kFloat32).to_vector<float>() == h.t().contiguous().to(kFloat32).to_vector<float>());
    Tensor f = empty({3}, dt);
    f.fill_(2.5);
    CHECK(f.to_vector<double>() == std::vector<double>{2.5, 2.5, 2.5});
    CHECK_THROWS_WITH(add(h, h), Catch::Contains(dtype_name(dt)) && Catch::Contains("autocast operands only"));
    CHECK_THROWS_WITH(conv2d(h.reshape({1, 1, 4, 5}), h.reshape({1, 1, 4, 5}), Tensor()), Catch::Contains(dtype_name(dt)));
  }
}

namespace {

// One product under autocast against float64 on the rounded operands: the output, and the
// gradients of x and w for a random output gradient r.
//
// What must hold, and why it is a tight test: gndet's product is round_dt(fp32 sum of products of
// rounded operands). Products of two 16-bit values are exact in float32 and float64 alike, so the
// float64 result s differs from the float32 sum only by float32 summation error (~1e-7 relative),
// far below a 16-bit ulp (2^-8 or 2^-11). Hence every output value (1) is a value of dt (the
// output was rounded) and (2) lies within one dt-ulp of s (the rounding of s, or its neighbour
// when s sits within the summation error of a midpoint), and (3) most equal round_dt(s) exactly.
// Skipping the operand rounding moves outputs by ~2^-9 x sqrt(terms) relative: many ulps.
using ProductFn = std::function<Tensor(const Tensor& x, const Tensor& w, const Tensor& b)>;

void check_against_float64(const Tensor& got, const Tensor& want64, DType dt, const char* what) {
  INFO(what);
  REQUIRE(got.shape() == want64.shape());
  const std::vector<float> g = got.to_vector<float>();
  const std::vector<double> w = want64.to_vector<double>();
  int64_t unrepresentable = 0, far = 0, exact = 0;
  for (size_t i = 0; i < g.size(); ++i) {
    unrepresentable += round_to(dt, g[i]) != g[i];
    far += std::abs(g[i] - w[i]) > ulp(dt, w[i]);
    exact += g[i] == round_to(dt, static_cast<float>(w[i]));
  }
  CHECK(unrepresentable == 0);
  CHECK(far == 0);
  CHECK(exact >= static_cast<int64_t>(0.95 * static_cast<double>(g.size())));
}

void check_product(const ProductFn& f, const Shape& xs, const Shape& ws, int64_t bias, DType dt) {
  INFO(dtype_name(dt) << ", x " << shape_str(xs) << ", w " << shape_str(ws));
  Generator gen(17);
  const Tensor x = randn(xs, gen).set_requires_grad(), w = randn(ws, gen).set_requires_grad();
  const Tensor b = randn({bias}, gen).set_requires_grad();
  Tensor y, yb, r;
  {
    const autocast::Guard amp(dt);
    y = f(x, w, Tensor());
    r = randn(y.shape(), gen);
    sum(y * r).backward();
    yb = f(x, w, b);
  }
  const Tensor x64 = rounded64(x, dt).set_requires_grad(), w64 = rounded64(w, dt).set_requires_grad();
  const Tensor y64 = f(x64, w64, Tensor());
  sum(y64 * rounded64(r, dt)).backward();
  check_against_float64(y, y64, dt, "output");
  check_against_float64(x.grad(), x64.grad(), dt, "input gradient");
  check_against_float64(w.grad(), w64.grad(), dt, "weight gradient");
  if (bias == 0) return;  // a product without a bias (bmm)
  // The bias is added in float32 after the rounding: yb - y = b up to one float32 rounding of yb.
  const std::vector<float> yv = y.to_vector<float>(), ybv = yb.to_vector<float>(), bv = b.to_vector<float>();
  const int64_t inner = y.dim() == 4 ? y.size(2) * y.size(3) : 1;  // values per channel and image
  int64_t bad = 0;
  for (size_t i = 0; i < yv.size(); ++i) {
    const double bc = bv[static_cast<size_t>((static_cast<int64_t>(i) / inner) % bias)];
    bad += std::abs(static_cast<double>(ybv[i]) - yv[i] - bc) > 0x1p-23 * (std::abs(ybv[i]) + std::abs(bc));
  }
  CHECK(bad == 0);
}

}  // namespace

TEST_CASE("autocast: conv2d, conv_transpose2d, linear and matmul multiply rounded operands and round the result",
          "[autocast][layers]") {
  for (const DType dt : {kBFloat16, kFloat16}) {
    check_product([](const Tensor& x, const Tensor& w, const Tensor& b) { return conv2d(x, w, b, {1, 1}, {1, 1}); },
                  {2, 6, 9, 8}, {5, 6, 3, 3}, 5, dt);
    check_product([](const Tensor& x, const Tensor& w, const Tensor& b) { return conv2d(x, w, b, {2, 2}, {0, 0}); },
                  {1, 8, 7, 7}, {4, 8, 1, 1}, 4, dt);
    check_product([](const Tensor& x, const Tensor& w, const Tensor& b) { return conv_transpose2d(x, w, b, {2, 2}); },
                  {2, 4, 5, 6}, {4, 3, 2, 2}, 3, dt);
    check_product([](const Tensor& x, const Tensor& w, const Tensor& b) { return linear(x, w, b); }, {7, 40}, {6, 40},
                  6, dt);
    check_product([](const Tensor& x, const Tensor& w, const Tensor&) { return matmul(x, w.transpose(1, 2)); },
                  {3, 5, 30}, {3, 4, 30}, 0, dt);
  }
}

TEST_CASE("autocast leaves float64 and float32 regions alone; float16 overflows where bfloat16 does not",
          "[autocast][layers]") {
  Generator gen(23);
  const Tensor x = randn({1, 3, 6, 6}, gen), w = randn({4, 3, 3, 3}, gen);
  const Tensor fp32 = conv2d(x, w, Tensor());
  {
    const autocast::Guard amp(kBFloat16);
    CHECK(autocast::dtype() == kBFloat16);
    // float64 is never cast (PyTorch's rule), so float64 gradchecks hold under autocast too.
    const Tensor x64 = x.to(kFloat64), w64 = w.to(kFloat64);
    CHECK(conv2d(x64, w64, Tensor()).to_vector<double>() == [&] {
      const autocast::Guard off(std::nullopt);
      return conv2d(x64, w64, Tensor()).to_vector<double>();
    }());
    const auto r = autograd::gradcheck([](const Tensors& in) { return conv2d(in[0], in[1], Tensor(), {1, 1}, {1, 1}); },
                                       {Tensor(x64).set_requires_grad(), Tensor(w64).set_requires_grad()});
    CHECK(r.passed);
    {
      const autocast::Guard off(std::nullopt);  // a float32 region inside
      CHECK(test::max_abs_diff(conv2d(x, w, Tensor()), fp32) == 0.0);
    }
    CHECK(test::max_abs_diff(conv2d(x, w, Tensor()), fp32) > 0.0);  // rounded again
  }
  CHECK(!autocast::dtype());
  // 18 products of 200 x 200: 720000, beyond float16's 65504 (inf) and well inside bfloat16's range.
  const Tensor big = full({1, 2, 3, 3}, 200.0), wbig = full({1, 2, 3, 3}, 200.0);
  {
    const autocast::Guard amp(kFloat16);
    CHECK(conv2d(big, wbig, Tensor()).item<float>() == INFINITY);
  }
  {
    const autocast::Guard amp(kBFloat16);
    CHECK(conv2d(big, wbig, Tensor()).item<float>() == 720896.0f);  // 720000 rounded to 8 significant bits
  }
  CHECK_THROWS_WITH(autocast::Guard(kFloat32), Catch::Contains("expected bfloat16 or float16"));
  CHECK(autocast::parse_dtype("bf16", "--amp") == kBFloat16);
  CHECK(autocast::parse_dtype("float16", "--amp") == kFloat16);
  CHECK_THROWS_WITH(autocast::parse_dtype("fp8", "--amp"), Catch::Contains("--amp") && Catch::Contains("fp8"));
}
