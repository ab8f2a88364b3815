// Losses by hand: cross entropy (class weights, ignore_index), BCE with logits, l1, smooth l1.
#include <cmath>
#include <vector>

#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/reduce.h"
#include "tensor/factory.h"
#include "tests/support.h"

using namespace gndet;
using VD = std::vector<double>;

TEST_CASE("cross_entropy by hand, with class weights and ignore_index", "[layers]") {
  const Tensor logits = from_data<double>({1, 2, 3, 1, 1, 1, 5, 0, 0}, {3, 3});
  const double l0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0)) - 3.0;  // 0.4076
  const double l1 = std::log(3.0);
  const double l2 = std::log(std::exp(5.0) + 2.0) - 0.0;  // target 1 (logit 0)
  CHECK(cross_entropy(logits, from_data<int64_t>({2, 0, 1})).item<double>() == Approx((l0 + l1 + l2) / 3).epsilon(1e-14));
  CHECK(cross_entropy(logits, from_data<int64_t>({2, 0, 1}), Tensor(), -100, Reduction::Sum).item<double>() ==
        Approx(l0 + l1 + l2).epsilon(1e-14));
  // Weighted mean over the non-ignored samples: (3 * l0 + 1 * l1) / (3 + 1).
  const Tensor cw = from_data<double>({1, 2, 3});
  CHECK(cross_entropy(logits, from_data<int64_t>({2, 0, -100}), cw).item<double>() ==
        Approx((3 * l0 + l1) / 4).epsilon(1e-14));
  const Tensor none = cross_entropy(logits, from_data<int64_t>({2, 7, 1}), cw, 7, Reduction::None);
  CHECK(none.to_vector<double>()[0] == Approx(3 * l0).epsilon(1e-14));
  CHECK(none.to_vector<double>()[1] == 0.0);
  // Extreme logits stay finite.
  CHECK(std::isfinite(cross_entropy(from_data<float>({1000, -1000}, {1, 2}), from_data<int64_t>({1})).item<float>()));
  CHECK_THROWS_WITH(cross_entropy(logits, from_data<int64_t>({2, 3, 0})),
                    Catch::Contains("cross_entropy: target 3 of sample 1 is outside [0, 3)"));
  CHECK_THROWS_WITH(cross_entropy(logits, from_data<int64_t>({2, 0})), Catch::Contains("expected target (3)"));
}

TEST_CASE("binary_cross_entropy_with_logits, l1 and smooth_l1 by hand", "[layers]") {
  const Tensor x = from_data<double>({0, 100, -100, 2});
  const Tensor t = from_data<double>({1, 0, 0, 1});
  const VD bce = binary_cross_entropy_with_logits(x, t, Tensor(), Reduction::None).to_vector<double>();
  CHECK(bce[0] == Approx(std::log(2.0)).epsilon(1e-15));
  CHECK(bce[1] == 100.0);                    // no overflow in exp(100)
  CHECK(bce[2] == Approx(3.7200759760208e-44).epsilon(1e-12));
  CHECK(bce[3] == Approx(0.12692801104297263).epsilon(1e-15));
  const Tensor w = from_data<double>({2, 0, 0, 1});
  CHECK(binary_cross_entropy_with_logits(x, t, w).item<double>() ==
        Approx((2 * std::log(2.0) + 0.12692801104297263) / 4).epsilon(1e-14));

  const Tensor p = from_data<double>({0.5, -2, 0}), z = zeros({3}, kFloat64);
  CHECK(smooth_l1_loss(p, z, 1.0, Reduction::None).to_vector<double>() == VD{0.125, 1.5, 0});
  CHECK(l1_loss(p, z, Reduction::None).to_vector<double>() == VD{0.5, 2, 0});
  CHECK(l1_loss(p, z).item<double>() == Approx(2.5 / 3).epsilon(1e-15));
  CHECK(smooth_l1_loss(p, z, 1.0, Reduction::Sum).item<double>() == 1.625);
  CHECK(std::isnan(l1_loss(zeros({0}), zeros({0})).item<float>()));  // mean of nothing, as PyTorch
  CHECK_THROWS_WITH(l1_loss(zeros({2, 3}), zeros({3, 2})),
                    Catch::Contains("l1_loss: pred (2, 3) and target (3, 2) must have the same shape"));
}
