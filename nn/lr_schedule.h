// Learning-rate schedules as pure functions of (epoch, iteration): warmup times step decay.
//
//   lr(epoch, iter) = base_lr * warmup(iter) * gamma ^ (number of milestones <= t)
//   t = epoch (milestones by epoch, mmdetection) or iter (by iteration, Detectron)
//
// epoch and iter count from 0; iter is the global iteration (not reset per epoch): the lr used by
// the update of iteration `iter`, inside epoch `epoch`.
//
// Warmup kinds, with f = warmup_factor and W = warmup_iters:
//   Linear          mmengine LinearLR(start_factor=f, begin=0, end=W, by_epoch=False), mmdetection 3:
//                   f + (1 - f) * min(iter, W - 1) / (W - 1)      (reaches 1 at iter W - 1)
//   LinearDetectron Detectron / mmcv 1.x 'linear': f + (1 - f) * iter / W for iter < W, then 1
//   Constant        Detectron 'constant': f for iter < W, then 1 (Detectron's GN zoo: f = 1/3)
//   None            1
#pragma once

#include <cstdint>
#include <vector>

namespace gndet::nn {

enum class WarmupKind { None, Linear, LinearDetectron, Constant };

struct LrScheduleOptions {
  double base_lr = 0.02;
  WarmupKind warmup = WarmupKind::Linear;
  int64_t warmup_iters = 500;
  double warmup_factor = 0.001;
  std::vector<int64_t> milestones{};  // increasing; epochs when by_epoch, else iterations
  bool by_epoch = true;
  double gamma = 0.1;
};

class LrSchedule {
 public:
  explicit LrSchedule(const LrScheduleOptions& options);  // validates the options
  double lr_at(int64_t epoch, int64_t iter) const { return options_.base_lr * warmup_factor(iter) * decay_factor(epoch, iter); }
  double warmup_factor(int64_t iter) const;
  double decay_factor(int64_t epoch, int64_t iter) const;
  const LrScheduleOptions& options() const { return options_; }

  // mmdetection's zoo schedule: LinearLR(0.001, end 500) + MultiStepLR(milestones by epoch, 0.1).
  static LrSchedule mmdetection(double base_lr, std::vector<int64_t> milestone_epochs);
  // Detectron's GN schedule: constant warmup 1/3 for 500 iterations, steps by iteration, gamma 0.1.
  static LrSchedule detectron(double base_lr, std::vector<int64_t> step_iters);

 private:
  LrScheduleOptions options_;
};

}  // namespace gndet::nn
