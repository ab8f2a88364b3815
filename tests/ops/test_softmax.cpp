// softmax and log_softmax.
#include <cmath>

#include "ops/elementwise.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using V = std::vector<float>;

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
