// Forward values of the core ops on small hand-checked cases, and their error messages.
#include <cmath>
#include <limits>

#include "ops/elementwise.h"
#include "ops/index.h"
#include "ops/join.h"
#include "ops/linalg.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "ops/sort.h"
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

TEST_CASE("reductions over any dims", "[ops]") {
  const Tensor x = arange(0.0, 24.0, 1.0, kFloat32).reshape({2, 3, 4});
  CHECK(sum(x).item<float>() == 276.0f);
  CHECK(sum(x, {0}).to_vector<float>()[0] == 12.0f);                       // column path
  CHECK(sum(x, {2}).to_vector<float>() == V{6, 22, 38, 54, 70, 86});         // row path
  CHECK(sum(x, {0, 2}).to_vector<float>() == V{60, 92, 124});               // general path
  CHECK(sum(x, {1}, true).shape() == Shape{2, 1, 4});
  CHECK(sum(x, {-1, 0}).shape() == Shape{3});
  CHECK(mean(x, {1, 2}).to_vector<float>() == V{5.5, 17.5});
  CHECK(var(from_data<double>({1, 2, 3, 4})).item<double>() == Approx(5.0 / 3.0).epsilon(1e-15));
  CHECK(var(from_data<double>({1, 2, 3, 4}), {}, false).item<double>() == 1.25);
  const ValuesIndices m = max(from_data<float>({3, 7, 7, 1, 9, 2}, {2, 3}), 1);
  CHECK(m.values.to_vector<float>() == V{7, 9});
  CHECK(m.indices.to_vector<int64_t>() == VI{1, 1});  // the first of equal maxima
  CHECK(min(from_data<float>({3, 7, 1, 9}, {2, 2}), 0).indices.to_vector<int64_t>() == VI{1, 0});
  CHECK(argmax(from_data<float>({0, 5, 5, 2}), 0).item<int64_t>() == 1);
  CHECK(max(x).item<float>() == 23.0f);
  CHECK(std::isnan(max(from_data<float>({1, NAN, 3})).item<float>()));
  CHECK(sum(from_data<bool>({true, true, false})).item<int64_t>() == 2);
  CHECK(sum(zeros({0, 3}), {0}).to_vector<float>() == V{0, 0, 0});
  CHECK_THROWS_WITH(max(zeros({0}), 0), Catch::Contains("empty dimension"));
  CHECK_THROWS_WITH(sum(x, {3}), Catch::Contains("sum: dimension 3 out of range"));
}

TEST_CASE("large float32 sums are accurate (double accumulation)", "[ops]") {
  const Tensor x = full({1 << 22}, 0.1);  // 4M elements
  CHECK(sum(x).item<float>() == Approx(419430.4).epsilon(1e-6));
}

TEST_CASE("matmul and bmm, including transposed operands", "[ops]") {
  const Tensor a = from_data<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  const Tensor b = from_data<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  CHECK(matmul(a, b).to_vector<float>() == V{4, 5, 10, 11});
  CHECK(matmul(a, a.t()).to_vector<float>() == V{14, 32, 32, 77});
  CHECK(matmul(a.t(), a).shape() == Shape{3, 3});
  const Tensor batched = stack({a, a * 2.0});  // (2, 2, 3)
  CHECK(matmul(batched, b).to_vector<float>() == V{4, 5, 10, 11, 8, 10, 20, 22});
  CHECK(bmm(batched, stack({b, b})).shape() == Shape{2, 2, 2});
  CHECK(matmul(zeros({2, 0}), zeros({0, 3})).to_vector<float>() == V(6, 0.0f));
  CHECK_THROWS_WITH(matmul(a, a), Catch::Contains("do not multiply"));
}

TEST_CASE("a large GEMM agrees with a naive double-precision product", "[ops]") {
  Generator g(5);
  const Tensor a = randn({67, 129}, g), b = randn({129, 33}, g);
  const Tensor c = matmul(a, b);
  const VD av = a.to_vector<double>(), bv = b.to_vector<double>(), cv = c.to_vector<double>();
  double worst = 0;
  for (int i = 0; i < 67; ++i) {
    for (int j = 0; j < 33; ++j) {
      double s = 0;
      for (int k = 0; k < 129; ++k) s += av[i * 129 + k] * bv[k * 33 + j];
      worst = std::max(worst, std::abs(s - cv[i * 33 + j]));
    }
  }
  CHECK(worst < 1e-4);  // float32 sums of 129 products of N(0,1) values: rounding ~ 1e-6 * sqrt(129) * |terms|
}

TEST_CASE("cat, stack and split", "[ops]") {
  const Tensor a = from_data<float>({1, 2, 3, 4}, {2, 2});
  const Tensor b = from_data<float>({5, 6}, {2, 1});
  CHECK(cat({a, b}, 1).to_vector<float>() == V{1, 2, 5, 3, 4, 6});
  CHECK(cat({a, a}, 0).shape() == Shape{4, 2});
  CHECK(stack({a, a}, 2).shape() == Shape{2, 2, 2});
  const Tensors parts = split(arange(0.0, 7.0, 1.0, kFloat32), 3);
  REQUIRE(parts.size() == 3);
  CHECK(parts[2].to_vector<float>() == V{6});
  CHECK(split(a, {1, 1}, 1)[1].contiguous().to_vector<float>() == V{2, 4});
  CHECK_THROWS_WITH(cat({a, b}, 0), Catch::Contains("cat: tensor 1 has shape (2, 1)"));
  CHECK_THROWS_WITH(split(a, {1, 2}, 0), Catch::Contains("sizes sum to 3"));
}

TEST_CASE("index_select, gather, scatter_add, index_add, masked_fill, nonzero", "[ops]") {
  const Tensor x = from_data<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  CHECK(index_select(x, 0, from_data<int64_t>({2, 0})).to_vector<float>() == V{5, 6, 1, 2});
  CHECK(index_select(x, 1, from_data<int32_t>({1})).to_vector<float>() == V{2, 4, 6});
  CHECK(gather(x, 1, from_data<int64_t>({1, 0, 0}, {3, 1})).to_vector<float>() == V{2, 3, 5});
  CHECK(scatter_add(zeros({3}), 0, from_data<int64_t>({0, 2, 0}), from_data<float>({1, 2, 3})).to_vector<float>() ==
        V{4, 0, 2});
  CHECK(index_add(zeros({2, 2}), 0, from_data<int64_t>({1, 1}), ones({2, 2})).to_vector<float>() == V{0, 0, 2, 2});
  CHECK(masked_fill(x, from_data<bool>({true, false}, {1, 2}), -1).to_vector<float>() == V{-1, 2, -1, 4, -1, 6});
  CHECK(nonzero(from_data<float>({0, 1, 0, 2}, {2, 2})).to_vector<int64_t>() == VI{0, 1, 1, 1});
  CHECK(nonzero(zeros({3})).shape() == Shape{0, 1});
  CHECK(masked_select_rows(x, from_data<bool>({false, true, true})).to_vector<float>() == V{3, 4, 5, 6});
}

TEST_CASE("index errors name the op, the index and the range", "[ops][errors]") {
  const Tensor x = zeros({3, 2});
  CHECK_THROWS_WITH(index_select(x, 0, from_data<int64_t>({3})),
                    Catch::Contains("index_select: index 3 is out of range for a dimension of size 3"));
  CHECK_THROWS_WITH(index_select(x, 0, from_data<int64_t>({-1})), Catch::Contains("index -1"));
  CHECK_THROWS_WITH(gather(x, 1, from_data<int64_t>({5, 0, 0}, {3, 1})), Catch::Contains("gather: index 5"));
  CHECK_THROWS_WITH(gather(x, 1, from_data<int64_t>({0, 0}, {2, 1})), Catch::Contains("must match"));
  CHECK_THROWS_WITH(index_select(x, 0, from_data<float>({0})), Catch::Contains("index must be int64 or int32"));
  CHECK_THROWS_WITH(scatter_add(zeros({3}), 0, from_data<int64_t>({7}), ones({1})), Catch::Contains("scatter_add: index 7"));
}

TEST_CASE("sort, argsort and topk: stable, NaN largest", "[ops]") {
  const Tensor x = from_data<float>({3, 1, 2, 1, NAN, 0});
  const ValuesIndices asc = sort(x);
  CHECK(asc.indices.to_vector<int64_t>() == VI{5, 1, 3, 2, 0, 4});
  const ValuesIndices desc = sort(x, 0, true);
  CHECK(desc.indices.to_vector<int64_t>() == VI{4, 0, 2, 1, 3, 5});
  const ValuesIndices top = topk(from_data<float>({5, 1, 5, 3}), 3);
  CHECK(top.values.to_vector<float>() == V{5, 5, 3});
  CHECK(top.indices.to_vector<int64_t>() == VI{0, 2, 3});
  CHECK(topk(from_data<float>({5, 1, 5, 3}), 2, 0, false).indices.to_vector<int64_t>() == VI{1, 3});
  const Tensor m = from_data<float>({3, 1, 2, 9, 7, 8}, {2, 3});
  CHECK(sort(m, 0, true).indices.to_vector<int64_t>() == VI{1, 1, 1, 0, 0, 0});
  CHECK(argsort(m, 1).to_vector<int64_t>() == VI{1, 2, 0, 1, 2, 0});
  CHECK_THROWS_WITH(topk(m, 4), Catch::Contains("topk: k = 4"));
}

TEST_CASE("softmax and log_softmax are stable and consistent", "[ops]") {
  const Tensor x = from_data<float>({1000, 1001, 1002, -5, 0, 5}, {2, 3});
  const Tensor s = softmax(x, 1);
  const V v = s.to_vector<float>();
  CHECK(v[2] == Approx(std::exp(2.0) / (1 + std::exp(1.0) + std::exp(2.0))).epsilon(1e-6));
  CHECK(sum(s, {1}).to_vector<float>()[0] == Approx(1.0f));
  const V l = log_softmax(x, 1).to_vector<float>();
  for (int i = 0; i < 6; ++i) CHECK(l[i] == Approx(std::log(v[i])).margin(1e-5));
  CHECK(softmax(x, 0).to_vector<float>()[0] == Approx(1.0f));  // 1000 vs -5
}
