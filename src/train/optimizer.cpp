#include "train/optimizer.h"

#include <cmath>
#include <sstream>

#include "common/error.h"

namespace gradfit::train {

FlatOptimizer::FlatOptimizer(const config::OptimizerSpec& spec, torch::Tensor params, int64_t gradient_free)
    : FlatOptimizer(std::vector<config::OptimizerSpec>{spec}, std::move(params), gradient_free) {}

namespace {
constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;  // Adam's betas and eps: PyTorch's defaults

// Zeros shaped like `params` (R × P); for several rows, each row followed by a gap, as the ensemble's parameters
// (train::make_ensemble), so that LibTorch's element-wise loops take each row alone, as for a run alone.
torch::Tensor state_like(const torch::Tensor& params) {
  if (params.size(0) == 1) return torch::zeros_like(params);
  return torch::zeros({params.size(0), params.size(1) + kRowGap}, params.options()).narrow(1, 0, params.size(1));
}
}  // namespace

FlatOptimizer::FlatOptimizer(const std::vector<config::OptimizerSpec>& specs, torch::Tensor params,
                             int64_t gradient_free)
    : specs_(specs), params_(params.dim() == 1 ? params.unsqueeze(0) : params) {
  if (specs_.size() != static_cast<size_t>(params_.size(0)))
    throw Error("FlatOptimizer: " + std::to_string(specs_.size()) + " optimizer settings for " +
                std::to_string(params_.size(0)) + " rows of parameters");
  if (gradient_free < 0 || gradient_free > params_.size(1))
    throw Error("FlatOptimizer: " + std::to_string(gradient_free) + " parameters without a gradient of " +
                std::to_string(params_.size(1)));
  decayed_ = params_.narrow(1, 0, params_.size(1) - gradient_free);
  for (const auto& s : specs_)
    if (s.name != specs_.front().name || s.max_grad_norm != specs_.front().max_grad_norm)
      throw Error("FlatOptimizer: the rows must share one optimizer and one max_grad_norm");
  max_grad_norm_ = specs_.front().max_grad_norm;
  const auto name = specs_.front().name;
  if (name == config::Optimizer::lbfgs) {
    if (params_.size(0) != 1) throw Error("FlatOptimizer: L-BFGS trains one run, not an ensemble");
    const auto& spec = specs_.front();
    lbfgs_ = std::make_unique<Lbfgs>(params_[0], spec.history_size, spec.lr,
                                     LbfgsTolerances{spec.tolerance_grad, spec.tolerance_change});
  } else {
    first_ = state_like(params_);
  }
  if (name == config::Optimizer::adam || name == config::Optimizer::adamw) {
    second_ = state_like(params_);
    scratch_ = state_like(params_);
  }
  std::vector<double> lr, momentum, weight_decay;
  for (const auto& s : specs_)
    lr.push_back(s.lr), momentum.push_back(s.momentum), weight_decay.push_back(s.weight_decay);
  const auto options = params_.options();
  lr_ = torch::empty({params_.size(0), 1}, options.dtype(torch::kFloat64));
  momentum_ = torch::tensor(momentum, torch::kFloat64).view({-1, 1}).to(options);
  weight_decay_ = torch::tensor(weight_decay, options.dtype(torch::kFloat64)).view({-1, 1});
  factor_ = torch::empty({params_.size(0), 1}, options);
  decay_ = torch::empty({params_.size(0), 1}, options);
  norms_ = torch::empty({params_.size(0), 1}, options);
  factor64_ = torch::empty_like(lr_);
  beta1_ = torch::full({}, kBeta1, options);
  beta2_ = torch::full({}, kBeta2, options);
  eps_ = torch::full({}, kEps, options);
  root_correction2_ = torch::empty({}, options);
  minus_correction1_ = torch::empty({}, options.dtype(torch::kFloat64));
  update_ = state_like(params_);
  set_lr(lr);
}

void FlatOptimizer::set_lr(const std::vector<double>& lr) {
  torch::NoGradGuard no_grad;
  lr_.copy_(torch::tensor(lr, torch::kFloat64).view({-1, 1}));
  if (lbfgs_) lbfgs_->set_lr(lr.front());
  if (specs_.front().name == config::Optimizer::sgd) factor_.copy_(lr_.neg());  // -lr until the next set_lr
  if (specs_.front().name == config::Optimizer::adamw) {
    at::mul_out(factor64_, lr_, weight_decay_);
    decay_.copy_(factor64_.neg_().add_(1));  // 1 - lr × weight_decay in float64, rounded as PyTorch's scalar
  }
}

// clip_grad_norm_ on each row: the coefficient max / (norm + 1e-6), at most 1, in the gradient's dtype.
void FlatOptimizer::clip(const torch::Tensor& grad) {
  at::linalg_vector_norm_out(norms_, grad, 2, at::IntArrayRef{1}, /*keepdim=*/true, c10::nullopt);
  norms_.add_(1e-6).reciprocal_().mul_(max_grad_norm_).clamp_max_(1.0);  // max / x is reciprocal × max there
  grad.mul_(norms_);
}

// The same arithmetic for one row or many, each row with its own factors (R × 1, broadcast over the row), so a
// row of an ensemble steps exactly as a run alone: the step size -lr / correction is computed in float64 and
// rounded to the parameters' dtype as LibTorch rounds its scalar argument.
void FlatOptimizer::step(const torch::Tensor& grad_in) {
  if (lbfgs_) throw Error("FlatOptimizer: L-BFGS steps with iterate()");
  torch::NoGradGuard no_grad;
  const auto grad = grad_in.view_as(params_);
  ++steps_;
  if (max_grad_norm_ > 0) clip(grad);
  const auto& spec = specs_.front();
  if (spec.name == config::Optimizer::adamw) decayed_.mul_(decay_);  // decoupled: before Adam's step
  if (spec.name != config::Optimizer::sgd) {                         // Adam, AdamW
    const double correction1 = 1 - std::pow(kBeta1, static_cast<double>(steps_));
    const double correction2 = 1 - std::pow(kBeta2, static_cast<double>(steps_));
    root_correction2_.fill_(std::sqrt(correction2));
    minus_correction1_.fill_(-correction1);
    first_.mul_(beta1_).add_(grad, 1 - kBeta1);
    second_.mul_(beta2_).addcmul_(grad, grad, 1 - kBeta2);
    at::sqrt_out(scratch_, second_);
    scratch_.div_(root_correction2_).add_(eps_);
    // addcdiv_'s params + (value × first) / denominator, value = -lr / correction1 per row.
    at::div_out(factor64_, lr_, minus_correction1_);
    factor_.copy_(factor64_);
    at::mul_out(update_, first_, factor_);
    update_.div_(scratch_);
    params_.add_(update_);
    return;
  }
  // SGD, dampening 0: the momentum buffer starts as the gradient; a row without momentum keeps the gradient.
  if (steps_ == 1)
    first_.copy_(grad);
  else
    first_.mul_(momentum_).add_(grad);
  at::mul_out(update_, first_, factor_);
  params_.add_(update_);
}

Lbfgs::Evaluation FlatOptimizer::iterate(const Lbfgs::Evaluation& start, const Lbfgs::Closure& evaluate) {
  if (!lbfgs_) throw Error("FlatOptimizer: iterate() is L-BFGS's step");
  ++steps_;
  return lbfgs_->step(start, evaluate);
}

std::string FlatOptimizer::save(int64_t row) const {
  if (lbfgs_) return lbfgs_->save();
  torch::serialize::OutputArchive archive;
  archive.write("steps", torch::tensor(steps_));
  archive.write("first", first_[row].cpu());
  if (second_.defined()) archive.write("second", second_[row].cpu());
  std::ostringstream bytes;
  archive.save_to(bytes);
  return bytes.str();
}

void FlatOptimizer::load(const std::string& bytes, torch::Device device, int64_t row) {
  if (lbfgs_) {
    lbfgs_->load(bytes, device);
    return;
  }
  torch::serialize::InputArchive archive;
  torch::Tensor steps, first, second;
  try {
    std::istringstream in(bytes);
    archive.load_from(in, device);
    archive.read("steps", steps);
    archive.read("first", first);
    if (second_.defined()) archive.read("second", second);
  } catch (const c10::Error& e) {
    throw Error("optimizer state in the checkpoint is not readable by this version of gradfit_dist");
  }
  const int64_t per_row = params_.size(1);
  if (first.numel() != per_row || (second_.defined() && second.numel() != per_row))
    throw Error("optimizer state in the checkpoint does not match the model's parameter count");
  torch::NoGradGuard no_grad;
  const auto loaded_steps = steps.item<int64_t>();
  if (row > 0 && loaded_steps != steps_)
    throw Error("optimizer states of one ensemble must have taken the same number of steps");
  steps_ = loaded_steps;
  first_[row].copy_(first.view({-1}));
  if (second_.defined()) second_[row].copy_(second.view({-1}));
}

torch::Tensor flatten_parameters(std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  auto flat = torch::empty({total}, params.empty() ? torch::TensorOptions() : params.front().options());
  int64_t offset = 0;
  for (auto& p : params) {
    auto view = flat.narrow(0, offset, p.numel()).view_as(p);
    view.copy_(p);
    p.set_data(view);
    offset += p.numel();
  }
  return flat;
}

}  // namespace gradfit::train
