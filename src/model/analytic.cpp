#include "model/analytic.h"

#include <cmath>

namespace gradfit::model {
namespace {

// On entry h holds z; on exit h = σ(z), s1 = σ'(z), s2 = σ''(z). `tmp` is scratch of the same shape.
// Softplus follows LibTorch's beta = 1 but not its threshold: above z = 20 autograd takes σ' = 1 and σ'' = 0 where
// this takes sigmoid(z) and its derivative (they differ there by less than 3e-9).
void activate(config::Activation activation, torch::Tensor& h, torch::Tensor& s1, torch::Tensor& s2,
              torch::Tensor& tmp) {
  switch (activation) {
    case config::Activation::relu:
      at::gt_out(tmp, h, 0);  // 1 where z > 0, as relu's derivative in autograd (0 at z = 0)
      s1.copy_(tmp);
      h.relu_();
      s2.zero_();
      return;
    case config::Activation::tanh:
      h.tanh_();
      at::mul_out(s1, h, h);
      s1.neg_().add_(1);  // 1 - t²
      at::mul_out(s2, h, s1);
      s2.mul_(-2);  // -2 t (1 - t²)
      return;
    case config::Activation::softplus:
      at::sigmoid_out(s1, h);
      at::mul_out(s2, s1, s1);
      at::sub_out(s2, s1, s2);  // s (1 - s)
      at::softplus_out(h, h, 1, 20);
      return;
    case config::Activation::silu:  // σ = z s, σ' = s + z s(1-s), σ'' = s(1-s) (2 + z (1 - 2s)), s = sigmoid(z)
      at::sigmoid_out(s1, h);
      at::mul_out(s2, s1, s1);
      at::sub_out(s2, s1, s2);  // t = s (1 - s)
      at::mul_out(tmp, h, s2);  // z t
      s2.mul_(2).add_(tmp).addcmul_(tmp, s1, -2);
      h.mul_(s1);
      s1.add_(tmp);
      return;
    case config::Activation::gelu: {  // σ = z Φ, σ' = Φ + z φ, σ'' = φ (2 - z²)
      const double inv_sqrt_2pi = 0.3989422804014327;
      s1.copy_(h).mul_(M_SQRT1_2).erf_().add_(1).mul_(0.5);  // Φ
      at::mul_out(tmp, h, h);                                // z²
      s2.copy_(tmp).mul_(-0.5).exp_().mul_(inv_sqrt_2pi);    // φ
      tmp.neg_().add_(2).mul_(s2);                           // φ (2 - z²)
      s2.mul_(h);                                            // z φ
      h.mul_(s1);
      s1.add_(s2);
      s2.copy_(tmp);
      return;
    }
  }
}

}  // namespace

AnalyticLoss::AnalyticLoss(Mlp model, int64_t chunk_rows) : model_(std::move(model)), chunk_rows_(chunk_rows) {
  TORCH_CHECK(chunk_rows_ > 0, "chunk_rows must be positive");
}

void AnalyticLoss::ensure_buffers(const torch::Tensor& like) {
  const auto options = like.options().requires_grad(false);
  if (!layers_.empty() && g_.options().dtype() == options.dtype() && g_.device() == options.device()) return;
  const int64_t rows = chunk_rows_;
  const int64_t n = model_->layer(0)->weight.size(1);
  layers_.clear();
  int64_t widest = n;
  for (size_t l = 0; l + 1 < model_->depth(); ++l) {
    const int64_t w = model_->layer(l)->weight.size(0);
    widest = std::max(widest, w);
    Layer b;
    for (auto* t : {&b.h, &b.s1, &b.s2, &b.a, &b.d, &b.d_bar}) *t = torch::empty({rows, w}, options);
    layers_.push_back(std::move(b));
  }
  g_ = torch::empty({rows, n}, options);
  r_ = torch::empty({rows, n}, options);
  v_ = torch::empty({rows, 1}, options);
  v_bar_ = torch::empty({rows, 1}, options);
  z_bar_ = torch::empty({rows, widest}, options);
  h_bar_ = torch::empty({rows, widest}, options);
  h_bar_next_ = torch::empty({rows, widest}, options);
  ones_ = torch::ones({rows}, options);
}

namespace {
// A contiguous rows × cols matrix at the start of a chunk buffer (cols defaults to the buffer's width).
torch::Tensor rows_of(const torch::Tensor& buffer, int64_t rows, int64_t cols = -1) {
  if (cols < 0) cols = buffer.size(1);
  return buffer.view({-1}).narrow(0, 0, rows * cols).view({rows, cols});
}
}  // namespace

void AnalyticLoss::sweeps(const torch::Tensor& x, int64_t rows, bool with_value) {
  const size_t hidden = layers_.size();
  const auto& out = model_->layer(hidden);
  // Forward: h_l = σ(h_{l-1} W_lᵀ + b_l), with σ' and σ'' kept.
  torch::Tensor h_prev = x;
  for (size_t l = 0; l < hidden; ++l) {
    auto& b = layers_[l];
    const auto& lin = model_->layer(l);
    auto h = rows_of(b.h, rows), s1 = rows_of(b.s1, rows), s2 = rows_of(b.s2, rows);
    auto tmp = rows_of(z_bar_, rows, h.size(1));
    at::addmm_out(h, lin->bias, h_prev, lin->weight.t());
    activate(model_->activation(), h, s1, s2, tmp);
    h_prev = h;
  }
  if (with_value) {
    auto v = rows_of(v_, rows);
    at::addmm_out(v, out->bias, h_prev, out->weight.t());
  }
  // Backward: a_L = w (the output weights), d_l = a_l ⊙ σ'_l, a_{l-1} = d_l W_l; dV/dx = a_0.
  for (size_t l = hidden; l-- > 0;) {
    auto& b = layers_[l];
    auto d = rows_of(b.d, rows);
    if (l + 1 == hidden)
      at::mul_out(d, rows_of(b.s1, rows), out->weight);
    else
      at::mul_out(d, rows_of(b.a, rows), rows_of(b.s1, rows));
    auto a_prev = l == 0 ? rows_of(g_, rows) : rows_of(layers_[l - 1].a, rows);
    at::mm_out(a_prev, d, model_->layer(l)->weight);
  }
}

void AnalyticLoss::chunk(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                         double value_weight, int64_t count, std::vector<torch::Tensor>& grads, torch::Tensor& sums) {
  const int64_t rows = x.size(0);
  const int64_t n = x.size(1);
  const size_t hidden = layers_.size();
  const bool with_value = value_weight > 0 && values.defined();
  sweeps(x, rows, with_value);
  const auto& out = model_->layer(hidden);
  auto& grad_out_w = grads[2 * hidden];
  auto& grad_out_b = grads[2 * hidden + 1];

  // Loss sums and the adjoints of dV/dx and V.
  auto r = rows_of(r_, rows);
  at::sub_out(r, rows_of(g_, rows), grad_samples);
  auto flat_r = r.view({-1});
  sums.narrow(0, 0, 1).add_(at::dot(flat_r, flat_r));
  r.mul_(2.0 / (static_cast<double>(count) * static_cast<double>(n)));  // ∂loss/∂(dV/dx)
  torch::Tensor v_bar;
  if (with_value) {
    v_bar = rows_of(v_bar_, rows);
    at::sub_out(v_bar, rows_of(v_, rows), values.view({-1, 1}));
    auto flat_v = v_bar.view({-1});
    sums.narrow(0, 1, 1).add_(at::dot(flat_v, flat_v));
    v_bar.mul_(2.0 * value_weight / static_cast<double>(count));  // ∂loss/∂V
  }
  auto ones = ones_.narrow(0, 0, rows);

  // Reverse of the backward sweep, first layer to last: a_{l-1} = d_l W_l gives
  //   W̄_l += d_lᵀ ā_{l-1},   d̄_l = ā_{l-1} W_lᵀ,   ā_l = d̄_l ⊙ σ'_l,
  // and the last ā (that of the output weights broadcast over the rows) sums into the output weights' gradient.
  torch::Tensor a_bar = r;
  torch::Tensor* scratch[2] = {&h_bar_, &h_bar_next_};
  for (size_t l = 0; l < hidden; ++l) {
    auto& b = layers_[l];
    auto d = rows_of(b.d, rows), d_bar = rows_of(b.d_bar, rows), s1 = rows_of(b.s1, rows);
    grads[2 * l].addmm_(d.t(), a_bar);
    at::mm_out(d_bar, a_bar, model_->layer(l)->weight.t());
    auto next = rows_of(*scratch[l % 2], rows, d_bar.size(1));
    at::mul_out(next, d_bar, s1);
    a_bar = next;
  }
  grad_out_w.view({-1}).addmv_(a_bar.t(), ones);

  // Reverse of the forward sweep, last layer to first, with z̄_l = d̄_l ⊙ a_l ⊙ σ''_l + h̄_l ⊙ σ'_l:
  //   W̄_l += z̄_lᵀ h_{l-1},   b̄_l += Σ_rows z̄_l,   h̄_{l-1} = z̄_l W_l.
  // For ReLU (σ'' = 0) without a value term every z̄ is zero and the sweep is skipped.
  const bool curved = model_->activation() != config::Activation::relu;
  bool has_h_bar = false;
  torch::Tensor h_bar;
  int turn = 0;  // h̄ alternates between the two scratch buffers
  if (with_value) {
    const auto h_last = rows_of(layers_[hidden - 1].h, rows);
    h_bar = rows_of(h_bar_, rows, h_last.size(1));
    at::mm_out(h_bar, v_bar, out->weight);
    grad_out_w.addmm_(v_bar.t(), h_last);
    grad_out_b.addmv_(v_bar.t(), ones);
    has_h_bar = true;
  }
  if (!curved && !has_h_bar) return;
  for (size_t l = hidden; l-- > 0;) {
    auto& b = layers_[l];
    auto z_bar = rows_of(z_bar_, rows, b.h.size(1));
    if (curved) {
      at::mul_out(z_bar, rows_of(b.d_bar, rows), rows_of(b.s2, rows));
      z_bar.mul_(l + 1 == hidden ? out->weight : rows_of(b.a, rows));
      if (has_h_bar) z_bar.addcmul_(h_bar, rows_of(b.s1, rows));
    } else {
      at::mul_out(z_bar, h_bar, rows_of(b.s1, rows));
    }
    const auto& weight = model_->layer(l)->weight;
    grads[2 * l].addmm_(z_bar.t(), l == 0 ? x : rows_of(layers_[l - 1].h, rows));
    grads[2 * l + 1].addmv_(z_bar.t(), ones);
    if (l > 0) {
      h_bar = rows_of(*scratch[++turn % 2], rows, weight.size(1));
      at::mm_out(h_bar, z_bar, weight);
      has_h_bar = true;
    }
  }
}

void AnalyticLoss::evaluate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                            double value_weight, torch::Tensor& sums) {
  torch::NoGradGuard no_grad;
  ensure_buffers(x);
  const bool with_value = value_weight > 0 && values.defined();
  const int64_t total = x.size(0);
  for (int64_t first = 0; first < total; first += chunk_rows_) {
    const int64_t rows = std::min(chunk_rows_, total - first);
    sweeps(x.narrow(0, first, rows), rows, with_value);
    auto r = rows_of(r_, rows);
    at::sub_out(r, rows_of(g_, rows), grad_samples.narrow(0, first, rows));
    auto flat_r = r.view({-1});
    sums.narrow(0, 0, 1).add_(at::dot(flat_r, flat_r));
    if (with_value) {
      auto e = rows_of(v_bar_, rows);
      at::sub_out(e, rows_of(v_, rows), values.narrow(0, first, rows).view({-1, 1}));
      auto flat_e = e.view({-1});
      sums.narrow(0, 1, 1).add_(at::dot(flat_e, flat_e));
    }
  }
}

void AnalyticLoss::accumulate(const torch::Tensor& x, const torch::Tensor& grad_samples, const torch::Tensor& values,
                              double value_weight, int64_t count, std::vector<torch::Tensor>& grads,
                              torch::Tensor& sums) {
  torch::NoGradGuard no_grad;
  ensure_buffers(x);
  const int64_t total = x.size(0);
  const bool with_value = value_weight > 0 && values.defined();
  for (int64_t first = 0; first < total; first += chunk_rows_) {
    const int64_t rows = std::min(chunk_rows_, total - first);
    chunk(x.narrow(0, first, rows), grad_samples.narrow(0, first, rows),
          with_value ? values.narrow(0, first, rows) : torch::Tensor(), value_weight, count, grads, sums);
  }
}

}  // namespace gradfit::model
