#pragma once
// The inputs of the potential, V(x) = MLP(φ(x)) (model.features), and their Jacobian J = ∂φ/∂x applied from its
// structure, never stored beyond the rows at hand: dV/dx = Jᵀ ∇MLP(φ(x)), and the analytic engine maps the loss's
// adjoint back to feature space with J (model/analytic.h).
//   identity           φ(x) = x (m = n).
//   inverse_distances  x holds the Cartesian coordinates of a atoms (x₁, y₁, z₁, x₂, ...; n = 3a); φ holds
//                      1/‖r_i − r_j‖ for i < j in row-major order of the pairs, m = a(a − 1)/2. Each feature depends on
//                      6 coordinates: ∂φ_ij/∂r_i = −φ_ij³ (r_i − r_j) = −∂φ_ij/∂r_j.
//   periodic           with periods L (n; 0 where a component is not periodic), component by component: the pair
//                      (cos θ_i, sin θ_i), θ_i = 2π x_i / L_i, for a periodic one, x_i for another; m = n + periodic.
// V is then invariant to rotations and translations of the atoms, or periodic in x_i with period L_i.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "config/config.h"

namespace gradfit::model {

// m, the MLP's inputs, for points of n components.
int64_t feature_dim(const config::ModelSpec& spec, int64_t n);

class Features {
 public:
  Features() = default;  // the identity
  // `spec`'s features for points of n components (n checked by the configuration: config::features_dim_error).
  Features(const config::ModelSpec& spec, int64_t n);

  // data.standardize: φ̃ = (φ − μ) / σ (m values each, fitted to the training rows; J̃ = diag(1/σ) J). Every
  // function below then computes φ̃ and J̃ in place of φ and J. Empty vectors: no scaling.
  void set_scaling(const std::vector<double>& mean, const std::vector<double>& scale);

  bool is_identity() const { return kind_ == config::Features::identity; }
  int64_t input_dim() const { return n_; }
  int64_t dim() const { return m_; }

  // What J needs at a chunk's rows, beside φ itself (B×m): inverse distances: r_i − r_j (B × pairs × 3) and φ³
  // (B × pairs); periodic: θ's factors −sin θ · 2π/L and cos θ · 2π/L (B × n, 0 where not periodic).
  struct AtRows {
    torch::Tensor phi, first, second;
  };
  // φ and J's factors at x (B×n), in x's dtype and device. No gradient flows through them.
  AtRows at(const torch::Tensor& x) const;
  // φ(x) by differentiable operations (autograd through it gives Jᵀ: the reference for the analytic engine).
  torch::Tensor operator()(const torch::Tensor& x) const;
  // dV/dx = Jᵀ g for g = ∂V/∂φ at the rows: g (R×)B×m -> (R×)B×n, R models sharing the rows.
  torch::Tensor transpose_times(const AtRows& rows, const torch::Tensor& g) const;
  // J r: r (R×)B×n -> (R×)B×m.
  torch::Tensor times(const AtRows& rows, const torch::Tensor& r) const;

  // The tables the features are computed from: inverse_distances: the atoms i and j of each pair (int64);
  // periodic: φ's columns in the block [x, cos θ, sin θ] (int64) and 2π / L_i, 0 where not periodic; with
  // set_scaling, μ and σ (undefined without).
  struct Tables {
    torch::Tensor pair_i, pair_j, columns, angular, mean, scale;
  };
  // On the CPU, floating ones in float64 (TorchScript's copy of them, use/export.cpp).
  const Tables& index_tables() const { return tables_; }

  // inverse_distances: the first row (of B) holding two atoms at the same place, and the pair; -1 when none.
  struct Coincidence {
    int64_t row = -1, atom_i = -1, atom_j = -1;
  };
  Coincidence first_coincidence(const torch::Tensor& x) const;

 private:
  // The tables in `like`'s dtype and on its device, copied there on first use (again when either changes), so
  // that a step makes no host transfer.
  const Tables& tables_like(const torch::Tensor& like) const;
  // x's columns (B × 3n when periodic: x, cos θ, sin θ) gathered into φ's order.
  torch::Tensor periodic_columns(const Tables& t, const torch::Tensor& x, const torch::Tensor& cos,
                                 const torch::Tensor& sin) const;
  // φ → (φ − μ) / σ where scaled.
  static torch::Tensor scaled(const Tables& t, const torch::Tensor& phi);

  config::Features kind_ = config::Features::identity;
  int64_t n_ = 0, m_ = 0;
  Tables tables_;             // on the CPU
  mutable Tables on_device_;  // tables_like's copy
};

}  // namespace gradfit::model
