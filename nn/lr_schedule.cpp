#include "nn/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "tensor/error.h"

namespace gndet::nn {

LrSchedule::LrSchedule(const LrScheduleOptions& o) : options_(o) {
  GNDET_CHECK(o.base_lr >= 0, "LrSchedule: base_lr must be non-negative, got ", o.base_lr);
  GNDET_CHECK(o.gamma > 0, "LrSchedule: gamma must be positive, got ", o.gamma);
  GNDET_CHECK(std::is_sorted(o.milestones.begin(), o.milestones.end()), "LrSchedule: milestones must be increasing");
  if (o.warmup != WarmupKind::None) {
    GNDET_CHECK(o.warmup_factor >= 0 && o.warmup_factor <= 1, "LrSchedule: warmup_factor ", o.warmup_factor,
                " must be in [0, 1]");
    GNDET_CHECK(o.warmup_iters >= (o.warmup == WarmupKind::Linear ? 2 : 1), "LrSchedule: warmup_iters ",
                o.warmup_iters, " too small for this warmup");
  }
}

double LrSchedule::warmup_factor(int64_t iter) const {
  GNDET_CHECK(iter >= 0, "LrSchedule: negative iteration ", iter);
  const double f = options_.warmup_factor;
  const int64_t W = options_.warmup_iters;
  switch (options_.warmup) {
    case WarmupKind::None: return 1.0;
    case WarmupKind::Linear:
      return f + (1.0 - f) * static_cast<double>(std::min(iter, W - 1)) / static_cast<double>(W - 1);
    case WarmupKind::LinearDetectron:
      return iter < W ? f + (1.0 - f) * static_cast<double>(iter) / static_cast<double>(W) : 1.0;
    case WarmupKind::Constant: return iter < W ? f : 1.0;
  }
  return 1.0;
}

double LrSchedule::decay_factor(int64_t epoch, int64_t iter) const {
  const int64_t t = options_.by_epoch ? epoch : iter;
  const auto passed = std::upper_bound(options_.milestones.begin(), options_.milestones.end(), t) -
                      options_.milestones.begin();
  return std::pow(options_.gamma, static_cast<double>(passed));
}

LrSchedule LrSchedule::mmdetection(double base_lr, std::vector<int64_t> milestone_epochs) {
  return LrSchedule({.base_lr = base_lr,
                     .warmup = WarmupKind::Linear,
                     .warmup_iters = 500,
                     .warmup_factor = 0.001,
                     .milestones = std::move(milestone_epochs),
                     .by_epoch = true,
                     .gamma = 0.1});
}

LrSchedule LrSchedule::detectron(double base_lr, std::vector<int64_t> step_iters) {
  return LrSchedule({.base_lr = base_lr,
                     .warmup = WarmupKind::Constant,
                     .warmup_iters = 500,
                     .warmup_factor = 1.0 / 3.0,
                     .milestones = std::move(step_iters),
                     .by_epoch = false,
                     .gamma = 0.1});
}

}  // namespace gndet::nn
