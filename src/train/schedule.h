#pragma once
// A run's learning rate, epoch by epoch (optimizer.schedule), stepped once after every epoch. Each schedule is
// the torch.optim.lr_scheduler it names, with that class's float64 arithmetic in the same order, so the rates are
// PyTorch's to the last bit or so:
//   constant     the rate stays lr
//   exponential  ExponentialLR(gamma = (lr_final / lr)^(1 / (epochs - 1))): lr in the first epoch, lr_final in the
//                last
//   cosine       SequentialLR of LinearLR(start_factor=0.1, total_iters=warmup_epochs) for warmup_epochs, then
//                CosineAnnealingLR(T_max = epochs - warmup_epochs, eta_min = lr_final); no warmup: the latter alone
//   plateau      ReduceLROnPlateau(mode min, factor, patience, threshold 1e-4 rel, cooldown 0, min_lr, eps 1e-8) on
//                the loss step() is given
#include <cstdint>

#include "config/config.h"
#include "records/records.h"

namespace gradfit::train {

class LrSchedule {
 public:
  LrSchedule() = default;  // constant, rate 0: a placeholder until assigned
  // A fresh schedule for a run of `epochs` epochs, at the rate of its first epoch.
  LrSchedule(const config::OptimizerSpec& spec, int64_t epochs);

  double lr() const { return state_.lr; }  // the rate of the epoch in progress
  // After each epoch: the next epoch's rate. `loss`: what plateau watches (ignored by the others).
  void step(double loss);

  records::ScheduleState state() const { return state_; }
  // Continues from `state` after `epochs_done` epochs; a state without a rate (an old checkpoint) keeps the first
  // epoch's (its run's rate was constant).
  void restore(const records::ScheduleState& state, int64_t epochs_done);

 private:
  void step_cosine();
  void step_plateau(double loss);

  config::OptimizerSpec spec_;
  int64_t epochs_ = 1;
  double gamma_ = 1;   // exponential
  int64_t steps_ = 0;  // taken: the epochs done (PyTorch's last_epoch)
  records::ScheduleState state_{0.0};
};

}  // namespace gradfit::train
