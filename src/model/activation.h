#pragma once
// The activations σ of model.activation, one class each (model/activation.cpp), every form of σ, σ' and σ'' the
// code computes side by side: the MLP's differentiable forward, the analytic engine's in-place σ, σ', σ'', the
// fused float32 kernel it may use instead (model/kernels.h), and the TorchScript of σ and σ' for export. Adding an
// activation: a class in activation.cpp, a line in activation_of, and its name in config (kActivations).
#include <ATen/core/Tensor.h>

#include <optional>

#include "config/config.h"
#include "model/kernels.h"

namespace gradfit::model {

class ActivationFunction {
 public:
  virtual ~ActivationFunction() = default;

  // σ(z) by differentiable operations (the model's forward; autograd's second derivative is the reference).
  virtual at::Tensor value(const at::Tensor& z) const = 0;
  // In place, all tensors of z's shape: on entry h holds z; on exit h = σ(z), s1 = σ'(z) and, where
  // stores_curvature() or `with_curvature`, s2 = σ''(z). `tmp` is scratch.
  virtual void activate(at::Tensor& h, at::Tensor& s1, at::Tensor& s2, at::Tensor& tmp, bool with_curvature) const = 0;
  // Whether activate and the float32 kernel always write σ'' (softplus does only when asked: the CPU's z̄ kernel
  // computes σ'' = σ' − σ'² from σ', the sigmoid).
  virtual bool stores_curvature() const { return true; }
  // σ'' = 0 wherever σ is differentiable (ReLU): the analytic engine skips what it would multiply.
  virtual bool piecewise_linear() const { return false; }
  // The fused float32 kernel computing σ, σ' (and σ'') in one pass, where there is one.
  virtual std::optional<kernels::Activation> kernel() const { return std::nullopt; }
  // TorchScript expressions of a Tensor z: σ(z), and σ'(z) as LibTorch's own backward computes it.
  virtual const char* script_value() const = 0;
  virtual const char* script_derivative() const = 0;
};

// The table: the one object of each activation, alive for the whole program.
const ActivationFunction& activation_of(config::Activation activation);

}  // namespace gradfit::model
