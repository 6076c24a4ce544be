#pragma once
// The inputs of the potential, V(x) = MLP(φ(x)) (model.features), and their Jacobian J = ∂φ/∂x applied from its
// structure, never stored beyond the rows at hand: dV/dx = Jᵀ ∇MLP(φ(x)), and the analytic engine maps the loss's
// adjoint back to feature space with J (model/analytic.h). Each kind is a class of its own (model/feature_map.h:
// identity, inverse_distances, periodic); Features chooses it from the configuration (the one factory) and adds
// data.standardize's scaling of φ.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/feature_map.h"

namespace gradfit::model {

// The kind of `spec.features` for points of n components (n checked by the configuration:
// config::features_dim_error). The factory: the one place that knows every kind.
std::shared_ptr<const FeatureMap> make_feature_map(const config::ModelSpec& spec, int64_t n);

// m, the MLP's inputs, for points of n components.
int64_t feature_dim(const config::ModelSpec& spec, int64_t n);

class Features {
 public:
  Features();  // the identity
  // `spec`'s features for points of n components.
  Features(const config::ModelSpec& spec, int64_t n);
  // A kind made otherwise (a test's).
  explicit Features(std::shared_ptr<const FeatureMap> kind);

  // data.standardize: φ̃ = (φ − μ) / σ (m values each, fitted to the training rows; J̃ = diag(1/σ) J). Every
  // function below then computes φ̃ and J̃ in place of φ and J. Empty vectors: no scaling (the identity has none).
  void set_scaling(const std::vector<double>& mean, const std::vector<double>& scale);

  const FeatureMap& kind() const { return *kind_; }
  bool is_identity() const { return kind_->is_identity(); }
  int64_t input_dim() const { return kind_->input_dim(); }
  int64_t dim() const { return kind_->dim(); }

  using AtRows = FeatureRows;
  // φ and J's factors at x (B×n), in x's dtype and device. No gradient flows through them.
  AtRows at(const torch::Tensor& x) const;
  // φ(x) by differentiable operations (autograd through it gives Jᵀ: the reference for the analytic engine).
  torch::Tensor operator()(const torch::Tensor& x) const;
  // dV/dx = Jᵀ g for g = ∂V/∂φ at the rows: g (R×)B×m -> (R×)B×n, R models sharing the rows.
  torch::Tensor transpose_times(const AtRows& rows, const torch::Tensor& g) const;
  // J r: r (R×)B×n -> (R×)B×m.
  torch::Tensor times(const AtRows& rows, const torch::Tensor& r) const;

  // The first row of x (B×n) the kind cannot take (FeatureMap::first_problem).
  RowProblem first_problem(const torch::Tensor& x) const { return kind_->first_problem(x); }

  // TorchScript of methods `features(self, x)` (φ̃) and `features_transpose(self, x, g)` (J̃ᵀ g), the kind's own
  // methods with the scaling around them, and the buffers they read (floating ones in `dtype`, the model's).
  std::string script() const;
  NamedTensors script_buffers(torch::Dtype dtype) const;

 private:
  std::shared_ptr<const FeatureMap> kind_;
  TablesLike scaling_;  // μ and σ (float64 on the CPU), or nothing
  bool scaled_ = false;
};

}  // namespace gradfit::model
