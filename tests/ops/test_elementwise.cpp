// Elementwise ops on small hand-checked cases, and their error messages.
#include <cmath>

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tensor/random.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;
using VD = std::vector<double>;
using VI = std::vector<int64_t>;
using VB = std::vector<bool>;

TEST_CASE("elementwise arithmetic with broadcasting", "[ops]") {
  const Tensor a = from_data<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = from_data<float>({10, 20, 30});
  CHECK((a + b).to_vector<float>() == V{11, 22, 33, 14, 25, 36});
  CHECK((a - b).to_vector<float>() == V{-9, -18, -27, -6, -15, -24});
  CHECK((a * from_data<float>({2, 3}, {2, 1})).to_vector<float>() == V{2, 4, 6, 12, 15, 18});
  CHECK((a / 2.0).to_vector<float>() == V{0.5, 1, 1.5, 2, 2.5, 3});
  CHECK((1.0 - a).to_vector<float>() == V{0, -1, -2, -3, -4, -5});
  CHECK((6.0 / a).to_vector<float>()[5] == 1.0f);
  CHECK(maximum(a, full({}, 3.5)).to_vector<float>() == V{3.5, 3.5, 3.5, 4, 5, 6});
  CHECK(minimum(a, full({}, 3.5)).to_vector<float>() == V{1, 2, 3, 3.5, 3.5, 3.5});
  CHECK(pow(a, 2.0).to_vector<float>() == V{1, 4, 9, 16, 25, 36});
  CHECK((from_data<int64_t>({1, 2}) + from_data<int64_t>({40, 50})).to_vector<int64_t>() == VI{41, 52});
  // Non-contiguous operands and outputs of strided views.
  const Tensor t = a.t();  // (3, 2)
  CHECK((t + from_data<float>({100, 200}, {1, 2})).contiguous().to_vector<float>() == V{101, 204, 102, 205, 103, 206});
}

TEST_CASE("unary math matches the C library", "[ops]") {
  const Tensor x = from_data<double>({-2.0, -0.5, 0.0, 0.5, 3.0});
  const VD v = x.to_vector<double>();
  const VD e = exp(x).to_vector<double>(), th = tanh(x).to_vector<double>(), sg = sigmoid(x).to_vector<double>();
  for (size_t i = 0; i < v.size(); ++i) {
    CHECK(e[i] == std::exp(v[i]));
    CHECK(th[i] == std::tanh(v[i]));
    CHECK(sg[i] == Approx(1.0 / (1.0 + std::exp(-v[i]))).epsilon(1e-15));
  }
  CHECK(relu(x).to_vector<double>() == VD{0, 0, 0, 0.5, 3});
  CHECK(abs(x).to_vector<double>() == VD{2, 0.5, 0, 0.5, 3});
  CHECK(sign(x).to_vector<double>() == VD{-1, -1, 0, 1, 1});
  CHECK(clamp(x, -1, 1).to_vector<double>() == VD{-1, -0.5, 0, 0.5, 1});
  CHECK(clamp_min(x, 0.25).to_vector<double>() == VD{0.25, 0.25, 0.25, 0.5, 3});
  CHECK(clamp_min(from_data<int64_t>({-3, 4}), 0).to_vector<int64_t>() == VI{0, 4});  // infinite upper bound, integers
  CHECK(floor(x).to_vector<double>() == VD{-2, -1, 0, 0, 3});
  CHECK(ceil(x).to_vector<double>() == VD{-2, -0, 0, 1, 3});
  CHECK(sqrt(from_data<double>({4, 9})).to_vector<double>() == VD{2, 3});
  CHECK(rsqrt(from_data<double>({4, 16})).to_vector<double>() == VD{0.5, 0.25});
  CHECK(log(from_data<double>({1, std::exp(2.0)})).to_vector<double>()[1] == Approx(2.0).epsilon(1e-15));
  // sigmoid never overflows at large |x|.
  CHECK(sigmoid(from_data<float>({-200, 200})).to_vector<float>() == V{0, 1});
}

TEST_CASE("comparisons, logic and where", "[ops]") {
  const Tensor a = from_data<float>({1, 2, 3});
  const Tensor b = from_data<float>({3, 2, 1});
  CHECK(lt(a, b).to_vector<bool>() == VB{true, false, false});
  CHECK(le(a, b).to_vector<bool>() == VB{true, true, false});
  CHECK(eq(a, b).to_vector<bool>() == VB{false, true, false});
  CHECK(ne(a, 2.0).to_vector<bool>() == VB{true, false, true});
  CHECK(gt(a, 1.5).dtype() == kBool);
  CHECK(logical_and(gt(a, 1.5), lt(a, 2.5)).to_vector<bool>() == VB{false, true, false});
  CHECK(logical_or(gt(a, 2.5), lt(a, 1.5)).to_vector<bool>() == VB{true, false, true});
  CHECK(logical_not(gt(a, 1.5)).to_vector<bool>() == VB{true, false, false});
  CHECK(where(gt(a, 1.5), a, b).to_vector<float>() == V{3, 2, 3});
  CHECK(where(gt(a, 1.5), a, -1.0).to_vector<float>() == V{-1, 2, 3});
}

TEST_CASE("elementwise errors name the op, dtypes and shapes", "[ops][errors]") {
  CHECK_THROWS_WITH(zeros({2, 3}) + zeros({4}), Catch::Contains("add") && Catch::Contains("(2, 3)") &&
                                                    Catch::Contains("(4)") && Catch::Contains("cannot be broadcast"));
  CHECK_THROWS_WITH(zeros({2}) * zeros({2}, kFloat64), Catch::Contains("mul: dtype mismatch, float32"));
  CHECK_THROWS_WITH(exp(zeros({2}, kInt64)), Catch::Contains("exp: expected a float32 or float64 tensor, got int64"));
  CHECK_THROWS_WITH(where(zeros({2}), zeros({2}), zeros({2})), Catch::Contains("where: condition must be bool"));
  CHECK_THROWS_WITH(clamp(zeros({2}), 1, 0), Catch::Contains("clamp: lower bound 1 exceeds upper bound 0"));
}

TEST_CASE("add_relu is relu(a + b) bit for bit, broadcast, forward and backward", "[ops]") {
  Generator gen(41);
  Tensor a1 = randn({4, 5, 33}, gen).set_requires_grad(), b1 = randn({5, 1}, gen).set_requires_grad();
  Tensor a2 = a1.detach().clone().set_requires_grad(), b2 = b1.detach().clone().set_requires_grad();
  const Tensor fused = add_relu(a1, b1), pair = relu(a2 + b2);
  CHECK(fused.to_vector<float>() == pair.to_vector<float>());
  CHECK(min(fused).item<double>() == 0.0);  // some were clipped
  const Tensor r = randn(fused.shape(), gen);
  sum(fused * r).backward();
  sum(pair * r).backward();
  CHECK(a1.grad().to_vector<float>() == a2.grad().to_vector<float>());
  CHECK(b1.grad().to_vector<float>() == b2.grad().to_vector<float>());
  CHECK_THROWS_WITH(add_relu(from_data<int64_t>({1}, {1}), from_data<int64_t>({1}, {1})), Catch::Contains("add_relu"));
}
