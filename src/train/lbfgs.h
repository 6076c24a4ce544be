#pragma once
// L-BFGS over ONE flat parameter tensor: torch.optim.LBFGS(lr, history_size, max_iter=1,
// line_search_fn='strong_wolfe', tolerance_grad, tolerance_change) (PyTorch's defaults 1e-7 and 1e-9), stepped
// once per epoch. The code is a port of PyTorch's torch/optim/lbfgs.py (LBFGS.step, _strong_wolfe,
// _cubic_interpolate) with the same tensor operations in the same order, so that in float64 the iterates are
// PyTorch's to rounding. Its scalars (losses, directional derivatives, step lengths) are kept in float64 (PyTorch
// keeps some as tensors of the parameters' dtype: in float32 the line search may round differently).
//
// Data parallel: every evaluation of the loss and its gradient is the caller's Closure, a pass over every rank's
// rows followed by one allreduce. Every rank sees the same reduced numbers, so every rank takes the same branches
// of the line search, calls the closure the same number of times, and keeps identical parameters.
#include <torch/torch.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <string>

namespace gradfit::train {

// torch.optim.LBFGS's tolerance_grad and tolerance_change (its defaults). The line search's own tolerance stays
// 1e-9, as LBFGS.step calls _strong_wolfe without it.
struct LbfgsTolerances {
  double grad = 1e-7, change = 1e-9;
};

class Lbfgs {
 public:
  // The loss and its gradient (P, a tensor of its own) at the parameters as they are now, and what else the caller
  // computed there (carried along untouched: the trainer's step sums).
  struct Evaluation {
    double loss = 0;
    torch::Tensor grad, extra;
  };
  // Collective: every rank of the group calls it the same number of times (see above).
  using Closure = std::function<Evaluation()>;

  // `params`: the flat parameters (P, contiguous), updated in place by step().
  Lbfgs(torch::Tensor params, int64_t history_size, double lr, LbfgsTolerances tolerances = {});

  void set_lr(double lr) { lr_ = lr; }

  // One LBFGS.step(closure): `start` is the closure's first call at the current parameters (the loss an epoch
  // records); `evaluate` is called for the line search's trial points. Returns the evaluation at the parameters the
  // step leaves (the line search's final point, as PyTorch's _strong_wolfe returns it; `start` where no step is
  // taken). They are the very parameters it was evaluated at, so it is what the next step's `start` would compute,
  // to the bit where evaluations are deterministic: a caller can pass it instead of evaluating again. PyTorch's
  // LBFGS.step (max_iter=1) evaluates there once more when stepped again.
  Evaluation step(const Evaluation& start, const Closure& evaluate);

  // Over all steps, PyTorch's state['func_evals']: every `start` counts, whether evaluated or passed on.
  int64_t function_evaluations() const { return func_evals_; }

  // The state (history, direction, step, previous gradient and loss, counters) as bytes, and back onto `device`.
  // load() throws Error when the bytes do not hold an L-BFGS state for this many parameters.
  std::string save() const;
  void load(const std::string& bytes, torch::Device device);

 private:
  torch::Tensor direction(const torch::Tensor& flat_grad);

  torch::Tensor params_;  // P
  int64_t history_size_;
  double lr_;
  LbfgsTolerances tolerances_;
  // PyTorch's state: n_iter, func_evals, d, t, old_dirs (y), old_stps (s), ro, H_diag, prev_flat_grad, prev_loss.
  int64_t n_iter_ = 0, func_evals_ = 0;
  torch::Tensor d_, prev_flat_grad_;
  double t_ = 0, h_diag_ = 1, prev_loss_ = 0;
  std::deque<torch::Tensor> old_dirs_, old_stps_;
  std::deque<double> ro_;
};

}  // namespace gradfit::train
