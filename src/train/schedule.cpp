#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace gradfit::train {
namespace {

constexpr double kPi = 3.141592653589793;   // Python's math.pi
constexpr double kWarmupStart = 0.1;        // LinearLR's start_factor; its end_factor is 1
constexpr double kPlateauThreshold = 1e-4;  // ReduceLROnPlateau's defaults: rel threshold, eps
constexpr double kPlateauEps = 1e-8;

}  // namespace

LrSchedule::LrSchedule(const config::OptimizerSpec& spec, int64_t epochs) : spec_(spec), epochs_(epochs) {
  state_.lr = spec.lr;
  if (spec.schedule == config::Schedule::exponential)
    gamma_ = std::pow(spec.lr_final / spec.lr, 1.0 / static_cast<double>(epochs - 1));
  if (spec.schedule == config::Schedule::cosine && spec.warmup_epochs > 0) state_.lr = spec.lr * kWarmupStart;
}

void LrSchedule::step(double loss) {
  ++steps_;
  switch (spec_.schedule) {
    case config::Schedule::constant: break;
    case config::Schedule::exponential: state_.lr *= gamma_; break;
    case config::Schedule::cosine: step_cosine(); break;
    case config::Schedule::plateau: step_plateau(loss); break;
  }
}

// SequentialLR: LinearLR's chained step while steps_ < warmup; at the milestone CosineAnnealingLR.step(0) (its
// closed form at 0: lr); then CosineAnnealingLR's chained step at its own epoch k = steps_ - warmup.
void LrSchedule::step_cosine() {
  const int64_t warmup = spec_.warmup_epochs;
  const double eta_min = spec_.lr_final, base = spec_.lr;
  double& lr = state_.lr;
  if (steps_ < warmup) {
    const double rise = 1.0 - kWarmupStart;
    lr = lr * (1. + rise / (static_cast<double>(warmup) * kWarmupStart + static_cast<double>(steps_ - 1) * rise));
    return;
  }
  const double t_max = static_cast<double>(epochs_ - warmup);
  const int64_t k = steps_ - warmup;
  if (k == 0) {
    lr = eta_min + (base - eta_min) * (1 + std::cos(kPi * 0.0 / t_max)) / 2;
    return;
  }
  const int64_t period = 2 * (epochs_ - warmup);
  if ((((k - 1 - (epochs_ - warmup)) % period) + period) % period == 0) {  // Python's modulo
    lr = lr + (base - eta_min) * (1 - std::cos(kPi / t_max)) / 2;
    return;
  }
  const double kd = static_cast<double>(k);
  lr = (1 + std::cos(kPi * kd / t_max)) / (1 + std::cos(kPi * (kd - 1) / t_max)) * (lr - eta_min) + eta_min;
}

// ReduceLROnPlateau.step(loss), mode min, cooldown 0.
void LrSchedule::step_plateau(double loss) {
  if (loss < state_.plateau_best * (1. - kPlateauThreshold)) {
    state_.plateau_best = loss;
    state_.plateau_bad_epochs = 0;
  } else {
    ++state_.plateau_bad_epochs;
  }
  if (state_.plateau_bad_epochs <= spec_.plateau_patience) return;
  const double reduced = std::max(state_.lr * spec_.plateau_factor, spec_.min_lr);
  if (state_.lr - reduced > kPlateauEps) state_.lr = reduced;
  state_.plateau_bad_epochs = 0;
}

void LrSchedule::restore(const records::ScheduleState& state, int64_t epochs_done) {
  steps_ = epochs_done;
  if (!std::isnan(state.lr)) state_ = state;
}

}  // namespace gradfit::train
