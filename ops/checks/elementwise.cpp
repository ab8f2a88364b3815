// Gradcheck cases for the elementwise family, with broadcasting in several shapes.
#include "ops/checks/check_util.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("add", "(3,4) + (4): broadcast over rows") {
  return gradcheck([](T in) { return in[0] + in[1]; }, {uniform({3, 4}, 1), uniform({4}, 2)});
}
GNDET_GRADCHECK("add", "(2,1,3) + (1,4,1): both sides broadcast") {
  return gradcheck([](T in) { return in[0] + in[1]; }, {uniform({2, 1, 3}, 3), uniform({1, 4, 1}, 4)});
}
GNDET_GRADCHECK("sub", "(2,3) - (2,3)") {
  return gradcheck([](T in) { return in[0] - in[1]; }, {uniform({2, 3}, 5), uniform({2, 3}, 6)});
}
GNDET_GRADCHECK("mul", "(2,3,4) * (3,1)") {
  return gradcheck([](T in) { return in[0] * in[1]; }, {uniform({2, 3, 4}, 7), uniform({3, 1}, 8)});
}
GNDET_GRADCHECK("mul", "x * x: one input used twice") {
  return gradcheck([](T in) { return in[0] * in[0]; }, {uniform({5}, 9)});
}
GNDET_GRADCHECK("div", "(3,4) / (4), divisor away from 0") {
  return gradcheck([](T in) { return in[0] / in[1]; }, {uniform({3, 4}, 10), uniform({4}, 11, 0.5, 2.0)});
}
GNDET_GRADCHECK("pow", "a^b, a > 0") {
  return gradcheck([](T in) { return pow(in[0], in[1]); }, {uniform({2, 3}, 12, 0.5, 2.0), uniform({2, 3}, 13)});
}
GNDET_GRADCHECK("maximum", "distinct values") {
  return gradcheck([](T in) { return maximum(in[0], in[1]); }, {uniform({4, 3}, 14), uniform({3}, 15)});
}
GNDET_GRADCHECK("minimum", "distinct values") {
  return gradcheck([](T in) { return minimum(in[0], in[1]); }, {uniform({4, 3}, 16), uniform({4, 3}, 17)});
}
GNDET_GRADCHECK("add_scalar", "x + 2.5") {
  return gradcheck([](T in) { return in[0] + 2.5; }, {uniform({3, 2}, 18)});
}
GNDET_GRADCHECK("mul_scalar", "-1.5 * x") {
  return gradcheck([](T in) { return -1.5 * in[0]; }, {uniform({3, 2}, 19)});
}
GNDET_GRADCHECK("div_scalar", "x / 3") {
  return gradcheck([](T in) { return in[0] / 3.0; }, {uniform({3, 2}, 20)});
}
GNDET_GRADCHECK("rdiv_scalar", "2 / x, x away from 0") {
  return gradcheck([](T in) { return 2.0 / in[0]; }, {uniform({3, 2}, 21, 0.5, 2.0)});
}
GNDET_GRADCHECK("pow_scalar", "x^2.5, x > 0") {
  return gradcheck([](T in) { return pow(in[0], 2.5); }, {uniform({4}, 22, 0.2, 2.0)});
}
GNDET_GRADCHECK("neg", "-x") {
  return gradcheck([](T in) { return -in[0]; }, {uniform({2, 2}, 23)});
}
GNDET_GRADCHECK("exp", "exp(x)") {
  return gradcheck([](T in) { return exp(in[0]); }, {uniform({3, 3}, 24)});
}
GNDET_GRADCHECK("log", "log(x), x > 0") {
  return gradcheck([](T in) { return log(in[0]); }, {uniform({3, 3}, 25, 0.2, 3.0)});
}
GNDET_GRADCHECK("sqrt", "sqrt(x), x > 0") {
  return gradcheck([](T in) { return sqrt(in[0]); }, {uniform({3, 3}, 26, 0.2, 3.0)});
}
GNDET_GRADCHECK("rsqrt", "rsqrt(x), x > 0") {
  return gradcheck([](T in) { return rsqrt(in[0]); }, {uniform({3, 3}, 27, 0.2, 3.0)});
}
GNDET_GRADCHECK("abs", "|x| away from the kink") {
  return gradcheck([](T in) { return abs(in[0]); }, {away_from_zero({3, 4}, 28)});
}
GNDET_GRADCHECK("relu", "away from the kink") {
  return gradcheck([](T in) { return relu(in[0]); }, {away_from_zero({3, 4}, 29)});
}
GNDET_GRADCHECK("add_relu", "relu(a + b) away from the kink, b broadcast over rows") {
  return gradcheck([](T in) { return add_relu(in[0], in[1]); }, {away_from_zero({3, 4}, 31), uniform({4}, 32, -0.05, 0.05)});
}
GNDET_GRADCHECK("sigmoid", "sigmoid(x) incl. large |x|") {
  return gradcheck([](T in) { return sigmoid(in[0]); }, {uniform({3, 4}, 30, -8.0, 8.0)});
}
GNDET_GRADCHECK("tanh", "tanh(x)") {
  return gradcheck([](T in) { return tanh(in[0]); }, {uniform({3, 4}, 31, -2.0, 2.0)});
}
GNDET_GRADCHECK("clamp", "[-0.1, 0.1] and min 0.1; every |x| >= 0.2, so no value sits near a bound") {
  return gradcheck([](T in) { return clamp(in[0], -0.1, 0.1) + clamp_min(in[0], 0.1) * 2.0; },
                   {away_from_zero({4, 4}, 32)});
}
GNDET_GRADCHECK("where", "cond ? a : b with broadcast b") {
  Generator g(33);
  const Tensor cond = on_check_device(lt(rand({3, 4}, g, kFloat64), 0.5));
  return gradcheck([cond](T in) { return where(cond, in[0], in[1]); }, {uniform({3, 4}, 34), uniform({4}, 35)});
}

}  // namespace gndet::checks
