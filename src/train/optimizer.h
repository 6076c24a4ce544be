#pragma once
// Adam, AdamW and SGD (with momentum) over ONE flat tensor that holds every parameter, so a step is a handful of
// tensor operations whatever the number of layers. The arithmetic is PyTorch's (torch.optim.Adam, AdamW with its
// decoupled weight decay, SGD; Adam and SGD without weight decay), element by element, with the gradient clipped
// first as torch.nn.utils.clip_grad_norm_ does where max_grad_norm is set. The tensor may hold several runs'
// parameters, a row each (R × P), each row with its own learning rate, momentum and weight decay: the runs of an
// ensemble step together, as R optimizers would one by one.
//
// L-BFGS (train/lbfgs.h) needs the loss at trial points, so it steps with iterate() instead of step(); it takes one
// run (one row): L-BFGS runs are not trained as ensembles, since each run's line search calls for its own points.
#include <torch/torch.h>

#include <memory>
#include <string>

#include "config/config.h"
#include "train/lbfgs.h"

namespace gradfit::train {

class FlatOptimizer {
 public:
  // `params`: the flat parameter tensor (P, or R × P with one spec per row), updated in place by step(). The
  // specs must name one optimizer. The last `gradient_free` elements of each row are parameters that get no
  // gradient (the output bias under a pure gradient loss): torch.optim skips a parameter whose .grad is None, so
  // AdamW does not decay them (with their zero gradient, every other update leaves them unchanged already).
  FlatOptimizer(const config::OptimizerSpec& spec, torch::Tensor params, int64_t gradient_free = 0);
  FlatOptimizer(const std::vector<config::OptimizerSpec>& specs, torch::Tensor params, int64_t gradient_free = 0);

  // One step with the flat gradient `grad` (same shape as params). Where max_grad_norm is set, each row of
  // `grad` is first scaled in place by min(1, max_grad_norm / (‖row‖ + 1e-6)).
  void step(const torch::Tensor& grad);

  // L-BFGS only: one iteration (Lbfgs::step) from the loss and gradient at the current weights. Collective over
  // the ranks whose allreduce `evaluate` uses. Returns the evaluation at the weights it leaves (Lbfgs::step).
  Lbfgs::Evaluation iterate(const Lbfgs::Evaluation& start, const Lbfgs::Closure& evaluate);
  bool is_lbfgs() const { return lbfgs_ != nullptr; }
  // L-BFGS: the evaluations over the run so far (PyTorch's state['func_evals']); 0 for the others.
  int64_t function_evaluations() const { return lbfgs_ ? lbfgs_->function_evaluations() : 0; }

  // The learning rate of each row from now on (R values: a schedule's rate of the epoch).
  void set_lr(const std::vector<double>& lr);

  // The state of row `row` (moments and step count) as bytes, and back; load() puts it on `device`. load() throws
  // Error when the bytes do not hold this optimizer's state for this many parameters. One row's bytes are those
  // of a one-row optimizer, so a run's state moves between an ensemble and a run of its own.
  std::string save(int64_t row = 0) const;
  void load(const std::string& bytes, torch::Device device, int64_t row = 0);

 private:
  std::vector<config::OptimizerSpec> specs_;
  torch::Tensor params_;                    // R × P
  torch::Tensor decayed_;                   // R × (P - gradient_free): what AdamW's weight decay multiplies
  torch::Tensor first_, second_, scratch_;  // Adam: exp_avg, exp_avg_sq, denominator; SGD: momentum buffer
  std::unique_ptr<Lbfgs> lbfgs_;            // L-BFGS: its whole state
  void clip(const torch::Tensor& grad);

  // Per row (R × 1): the learning rates and the step's factor in float64, that factor in the parameters' dtype,
  // the momenta, the weight decays and AdamW's factor 1 - lr × weight_decay; and the update.
  torch::Tensor lr_, factor64_, factor_, momentum_, weight_decay_, decay_, update_, norms_;
  // Adam's scalars as 0-dim tensors (the parameters' dtype; the step size's in float64): the same numbers as the
  // Scalar arguments they replace, which LibTorch would wrap in a new tensor (and copy to the dtype) at every step.
  torch::Tensor beta1_, beta2_, eps_, root_correction2_, minus_correction1_;
  double max_grad_norm_ = 0;  // the same for every row
  int64_t steps_ = 0;
};

// Elements left free after each row of an ensemble's parameters and optimizer state (see optimizer.cpp).
constexpr int64_t kRowGap = 16;

// Makes every parameter a view into one new flat tensor (values kept, order of `params`) and returns it.
torch::Tensor flatten_parameters(std::vector<torch::Tensor>& params);

}  // namespace gradfit::train
