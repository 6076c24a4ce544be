#pragma once
// The gradient-matching loss, by double backward: dV/dx is computed with create_graph=true so that the loss stays
// a function of the weights, and loss.backward() then reaches every weight.
#include <torch/torch.h>

#include <cstdint>

#include "model/mlp.h"

namespace gradfit::model {

// The loss on r = dV/dx − S, element by element: r² (nn.MSELoss's), or nn.HuberLoss(delta)'s
// huber(r) = r²/2 for |r| < δ, δ(|r| − δ/2) beyond (its derivative clamp(r, −δ, δ)).
struct GradientLoss {
  config::Loss kind = config::Loss::mse;
  double huber_delta = 1.0;
};

// nn.HuberLoss's elements of r: r²/2 for |r| < δ, δ(|r| − δ/2) beyond (the analytic engines' sums).
torch::Tensor huber_terms(const torch::Tensor& r, double delta);

struct LossTerms {
  torch::Tensor loss;       // scalar, differentiable w.r.t. the weights
  torch::Tensor grad_sse;   // scalar, detached: sum over the batch of ||dV/dx - S||^2
  torch::Tensor value_sse;  // scalar, detached: sum of (V - value)^2 (per atom: / a^2); zero when no value term
  torch::Tensor grad_loss;  // scalar, detached: the sum of the elements' loss (grad_sse for mse)
};

// x: B×n points, grad_samples: B×n, values: B or undefined, value_weight >= 0.
// loss = grad_loss / (count × n) + value_weight × value_sse / count (value_sse of (V − value) / a, per atom, where
// the model is a sum over a atoms: model.features atom_centered), where `count` is the number of samples in the
// GLOBAL batch (over all ranks), so that summing every rank's weight gradients gives the gradient of the global
// mean. With count = B this is nn.MSELoss (or nn.HuberLoss(δ)) on dV/dx (mean over B×n), plus the value term.
// create_graph = false evaluates only (no loss.backward() afterwards), e.g. for validation. `row_weights` (B, or
// undefined: all 1) multiply each row's terms in the loss and in the sums.
LossTerms gradient_matching_loss(Mlp& model, const torch::Tensor& x, const torch::Tensor& grad_samples,
                                 const torch::Tensor& values, double value_weight, int64_t count,
                                 bool create_graph = true, const GradientLoss& gradient_loss = {},
                                 const torch::Tensor& row_weights = {});

}  // namespace gradfit::model
