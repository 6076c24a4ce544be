#include "model/loss.h"

namespace gradfit::model {

LossTerms gradient_matching_loss(Mlp& model, const torch::Tensor& x, const torch::Tensor& grad_samples,
                                 const torch::Tensor& values, double value_weight, int64_t count, bool create_graph,
                                 const GradientLoss& gradient_loss) {
  const auto inputs = x.detach().requires_grad_(true);
  const auto V = model->forward(inputs);
  const auto dV_dx = torch::autograd::grad({V}, {inputs}, /*grad_outputs=*/{torch::ones_like(V)},
                                           /*retain_graph=*/true, create_graph)[0];
  const auto grad_sse = (dV_dx - grad_samples).pow(2).sum();
  const auto grad_loss = gradient_loss.kind == config::Loss::huber
                             ? torch::huber_loss(dV_dx, grad_samples, at::Reduction::Sum, gradient_loss.huber_delta)
                             : grad_sse;
  const double n = static_cast<double>(x.size(1));
  LossTerms terms;
  terms.loss = grad_loss / (static_cast<double>(count) * n);
  if (value_weight > 0 && values.defined()) {
    const auto value_sse = (V - values).pow(2).sum();
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
