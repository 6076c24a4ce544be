#include "model/loss.h"

namespace gradfit::model {

torch::Tensor huber_terms(const torch::Tensor& r, double delta) {
  const auto a = r.abs();
  return torch::where(a < delta, 0.5 * r.square(), delta * (a - 0.5 * delta));
}

LossTerms gradient_matching_loss(Mlp& model, const torch::Tensor& x, const torch::Tensor& grad_samples,
                                 const torch::Tensor& values, double value_weight, int64_t count, bool create_graph,
                                 const GradientLoss& gradient_loss, const torch::Tensor& row_weights) {
  const auto inputs = x.detach().requires_grad_(true);
  const auto V = model->forward(inputs);
  const auto dV_dx = torch::autograd::grad({V}, {inputs}, /*grad_outputs=*/{torch::ones_like(V)},
                                           /*retain_graph=*/true, create_graph)[0];
  const bool huber = gradient_loss.kind == config::Loss::huber;
  const bool weighted = row_weights.defined();
  const auto w = weighted ? row_weights.view({-1, 1}) : torch::Tensor();
  const auto squares = (dV_dx - grad_samples).pow(2);
  const auto grad_sse = weighted ? (squares * w).sum() : squares.sum();
  torch::Tensor grad_loss = grad_sse;
  if (huber && weighted)
    grad_loss = (torch::huber_loss(dV_dx, grad_samples, at::Reduction::None, gradient_loss.huber_delta) * w).sum();
  else if (huber)
    grad_loss = torch::huber_loss(dV_dx, grad_samples, at::Reduction::Sum, gradient_loss.huber_delta);
  const double n = static_cast<double>(x.size(1));
  LossTerms terms;
  terms.loss = grad_loss / (static_cast<double>(count) * n);
  if (value_weight > 0 && values.defined()) {
    const auto* layout = model->features().kind().atom_layout();
    const auto value_error =  // per atom where the model is a sum over atoms
        layout != nullptr ? (V - values) / static_cast<double>(layout->element_of_atom.size()) : V - values;
    const auto value_sse = weighted ? (value_error.pow(2) * row_weights).sum() : value_error.pow(2).sum();
    terms.loss = terms.loss + value_weight * value_sse / static_cast<double>(count);
    terms.value_sse = value_sse.detach();
  } else {
    terms.value_sse = torch::zeros({}, x.options());
  }
  terms.grad_sse = grad_sse.detach();
  terms.grad_loss = grad_loss.detach();
  return terms;
}

}  // namespace gradfit::model
