// Gradcheck cases for the losses. The L1 family is sampled away from its kinks (d == 0 and, for
// smooth L1, |d| == beta), where the derivative is not defined.
#include "ops/checks/check_util.h"
#include "ops/loss.h"

namespace gndet::checks {

using T = const Tensors&;

GNDET_GRADCHECK("cross_entropy", "mean, no weights") {
  const Tensor t = on_check_device(from_data<int64_t>({2, 0, 3, 1, 3}));
  return gradcheck([t](T in) { return cross_entropy(in[0], t); }, {uniform({5, 4}, 200, -3.0, 3.0)});
}
GNDET_GRADCHECK("cross_entropy", "mean with class weights and ignore_index") {
  const Tensor t = on_check_device(from_data<int64_t>({2, -1, 0, 1, -1, 2}));
  const Tensor w = on_check_device(from_data<double>({0.5, 2.0, 1.5}));
  return gradcheck([t, w](T in) { return cross_entropy(in[0], t, w, -1); }, {uniform({6, 3}, 201, -3.0, 3.0)});
}
GNDET_GRADCHECK("cross_entropy", "no reduction, ignore_index 255") {
  const Tensor t = on_check_device(from_data<int64_t>({1, 255, 0}));
  return gradcheck([t](T in) { return cross_entropy(in[0], t, Tensor(), 255, Reduction::None); },
                   {uniform({3, 2}, 202, -3.0, 3.0)});
}
GNDET_GRADCHECK("cross_entropy", "sum with class weights") {
  const Tensor t = on_check_device(from_data<int64_t>({0, 2, 2, 1}));
  const Tensor w = on_check_device(from_data<double>({1.0, 0.25, 3.0}));
  return gradcheck([t, w](T in) { return cross_entropy(in[0], t, w, -100, Reduction::Sum); },
                   {uniform({4, 3}, 203, -3.0, 3.0)});
}

GNDET_GRADCHECK("binary_cross_entropy_with_logits", "mean, gradients to logits and soft targets") {
  return gradcheck([](T in) { return binary_cross_entropy_with_logits(in[0], in[1]); },
                   {uniform({3, 4}, 210, -6.0, 6.0), uniform({3, 4}, 211, 0.0, 1.0)});
}
GNDET_GRADCHECK("binary_cross_entropy_with_logits", "broadcast weight, sum") {
  Generator g(212);
  const Tensor target = on_check_device(lt(rand({2, 3, 2}, g, kFloat64), 0.5).to(kFloat64));
  const Tensor w = on_check_device(from_data<double>({0.5, 2.0, 1.0}, {3, 1}));
  return gradcheck([=](T in) { return binary_cross_entropy_with_logits(in[0], target, w, Reduction::Sum); },
                   {uniform({2, 3, 2}, 213, -4.0, 4.0)});
}
GNDET_GRADCHECK("binary_cross_entropy_with_logits", "no reduction, large logits") {
  const Tensor target = on_check_device(from_data<double>({1, 0, 0, 1}));
  return gradcheck([target](T in) { return binary_cross_entropy_with_logits(in[0] * 30.0, target, Tensor(), Reduction::None); },
                   {uniform({4}, 214)});
}

GNDET_GRADCHECK("l1_loss", "mean, gradients to pred and target") {
  // target = t + 3 * (+-1): every difference is at least 1 away from the kink at 0.
  const Tensor offset = (sign(away_from_zero({3, 4}, 222)) * 3.0).detach();
  return gradcheck([offset](T in) { return l1_loss(in[0], in[1] + offset); }, {uniform({3, 4}, 220), uniform({3, 4}, 221)});
}
GNDET_GRADCHECK("l1_loss", "no reduction") {
  return gradcheck([](T in) { return l1_loss(in[0], zeros({2, 3}, in[0].options()), Reduction::None); },
                   {away_from_zero({2, 3}, 223)});
}

GNDET_GRADCHECK("smooth_l1_loss", "beta 1, both branches, mean") {
  const Tensor target = on_check_device(zeros({6}, kFloat64));
  return gradcheck([target](T in) { return smooth_l1_loss(in[0], target); },
                   {from_data<double>({0.3, -0.45, 2.5, -1.7, 0.05, 3.2}).set_requires_grad(true)});
}
GNDET_GRADCHECK("smooth_l1_loss", "beta 0.5, sum, gradient to target") {
  // pred - target = {0.1, -0.3, 0.9, -1.5, 0.2, 0.7}: both branches, no |d| near 0.5.
  const Tensor pred = on_check_device(from_data<double>({0.6, -0.2, 1.0, -1.0, 0.0, 0.9}, {2, 3}));
  return gradcheck([pred](T in) { return smooth_l1_loss(pred, in[0], 0.5, Reduction::Sum); },
                   {from_data<double>({0.5, 0.1, 0.1, 0.5, -0.2, 0.2}, {2, 3}).set_requires_grad(true)});
}
GNDET_GRADCHECK("smooth_l1_loss", "beta 1/9 (Detectron's RPN), no reduction") {
  // differences {0.05, 0.8, -0.7, 0.02}: quadratic, linear, linear, quadratic.
  return gradcheck([](T in) { return smooth_l1_loss(in[0], in[1], 1.0 / 9.0, Reduction::None); },
                   {from_data<double>({0.05, 0.9, -0.4, 0.0}).set_requires_grad(true),
                    from_data<double>({0.0, 0.1, 0.3, -0.02}).set_requires_grad(true)});
}

}  // namespace gndet::checks
