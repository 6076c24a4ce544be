#include "model/activation.h"

#include <ATen/ATen.h>

#include <cmath>

#include "common/error.h"

namespace gradfit::model {
namespace {

class Relu final : public ActivationFunction {
 public:
  at::Tensor value(const at::Tensor& z) const override { return at::relu(z); }
  void activate(at::Tensor& h, at::Tensor& s1, at::Tensor& s2, at::Tensor& tmp, bool) const override {
    at::gt_out(tmp, h, 0);  // 1 where z > 0, as relu's derivative in autograd (0 at z = 0)
    s1.copy_(tmp);
    h.relu_();
    s2.zero_();
  }
  bool piecewise_linear() const override { return true; }
  std::optional<kernels::Activation> kernel() const override { return kernels::Activation::relu; }
  const char* script_value() const override { return "torch.relu(z)"; }
  const char* script_derivative() const override { return "(z > 0).to(z.dtype)"; }
};

class Tanh final : public ActivationFunction {
 public:
  at::Tensor value(const at::Tensor& z) const override { return at::tanh(z); }
  void activate(at::Tensor& h, at::Tensor& s1, at::Tensor& s2, at::Tensor&, bool) const override {
    h.tanh_();
    at::mul_out(s1, h, h);
    s1.neg_().add_(1);  // 1 - t²
    at::mul_out(s2, h, s1);
    s2.mul_(-2);  // -2 t (1 - t²)
  }
  std::optional<kernels::Activation> kernel() const override { return kernels::Activation::tanh; }
  const char* script_value() const override { return "torch.tanh(z)"; }
  const char* script_derivative() const override { return "1.0 - torch.tanh(z) * torch.tanh(z)"; }
};

// LibTorch's softplus (beta 1, threshold 20): above z = 20 it is linear, σ' = 1 and σ'' = 0.
class Softplus final : public ActivationFunction {
 public:
  at::Tensor value(const at::Tensor& z) const override { return at::softplus(z); }
  void activate(at::Tensor& h, at::Tensor& s1, at::Tensor& s2, at::Tensor&, bool with_curvature) const override {
    at::sigmoid_out(s1, h);
    if (with_curvature) {
      at::mul_out(s2, s1, s1);
      at::sub_out(s2, s1, s2);  // s (1 - s)
    }
    if (h.scalar_type() == at::kDouble) {  // in float32 sigmoid is exactly 1 above the threshold anyway
      const auto linear = h > 20;
      s1.masked_fill_(linear, 1);
      if (with_curvature) s2.masked_fill_(linear, 0);
    }
    at::softplus_out(h, h, 1, 20);
  }
  bool stores_curvature() const override { return false; }
  std::optional<kernels::Activation> kernel() const override { return kernels::Activation::softplus; }
  const char* script_value() const override { return "torch.softplus(z, 1.0, 20.0)"; }
  const char* script_derivative() const override {
    return "torch.where(z > 20.0, torch.ones_like(z), torch.exp(z) / (torch.exp(z) + 1.0))";
  }
};

// σ = z s, σ' = s + z s(1-s), σ'' = s(1-s) (2 + z (1 - 2s)), s = sigmoid(z).
class Silu final : public ActivationFunction {
 public:
  at::Tensor value(const at::Tensor& z) const override { return at::silu(z); }
  void activate(at::Tensor& h, at::Tensor& s1, at::Tensor& s2, at::Tensor& tmp, bool) const override {
    at::sigmoid_out(s1, h);
    at::mul_out(s2, s1, s1);
    at::sub_out(s2, s1, s2);  // t = s (1 - s)
    at::mul_out(tmp, h, s2);  // z t
    s2.mul_(2).add_(tmp).addcmul_(tmp, s1, -2);
    h.mul_(s1);
    s1.add_(tmp);
  }
  std::optional<kernels::Activation> kernel() const override { return kernels::Activation::silu; }
  const char* script_value() const override { return "torch.silu(z)"; }
  const char* script_derivative() const override { return "torch.sigmoid(z) * (1.0 + z * (1.0 - torch.sigmoid(z)))"; }
};

// σ = z Φ, σ' = Φ + z φ, σ'' = φ (2 - z²), Φ and φ the normal distribution's CDF and density. No float32 kernel.
class Gelu final : public ActivationFunction {
 public:
  at::Tensor value(const at::Tensor& z) const override { return at::gelu(z); }
  void activate(at::Tensor& h, at::Tensor& s1, at::Tensor& s2, at::Tensor& tmp, bool) const override {
    const double inv_sqrt_2pi = 0.3989422804014327;
    s1.copy_(h).mul_(M_SQRT1_2).erf_().add_(1).mul_(0.5);  // Φ
    at::mul_out(tmp, h, h);                                // z²
    s2.copy_(tmp).mul_(-0.5).exp_().mul_(inv_sqrt_2pi);    // φ
    tmp.neg_().add_(2).mul_(s2);                           // φ (2 - z²)
    s2.mul_(h);                                            // z φ
    h.mul_(s1);
    s1.add_(s2);
    s2.copy_(tmp);
  }
  const char* script_value() const override { return "torch.gelu(z)"; }
  const char* script_derivative() const override {
    return "0.5 * (1.0 + torch.erf(z * 0.70710678118654752440)) + z * torch.exp(-0.5 * z * z) * "
           "0.39894228040143267794";
  }
};

}  // namespace

const ActivationFunction& activation_of(config::Activation activation) {
  static const Relu relu;
  static const Tanh tanh;
  static const Softplus softplus;
  static const Silu silu;
  static const Gelu gelu;
  switch (activation) {
    case config::Activation::relu: return relu;
    case config::Activation::tanh: return tanh;
    case config::Activation::softplus: return softplus;
    case config::Activation::silu: return silu;
    case config::Activation::gelu: return gelu;
  }
  throw Error("unknown activation " + std::to_string(static_cast<int>(activation)));
}

}  // namespace gradfit::model
