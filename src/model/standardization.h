#pragma once
// data.standardize: the model Ṽ of a run is trained on standardized data and used in the user's units.
//   x̃_i = (x_i − μ_i) / σ_i,   S̃_i = S_i · σ_i / s,   ṽ = (V − v0) / s          (training data)
//   V(x) = s · Ṽ(x̃) + v0,     ∂V/∂x_i = (s / σ_i) · ∂Ṽ/∂x̃_i                     (predictions)
// With model.features the standardization lives in feature space: x stays as it is (μ = 0, σ = 1), and the
// features are scaled instead, φ̃ = (φ(x) − μ_φ) / σ_φ (model/features.h's set_scaling); S̃ = S / s.
// Every transform is computed in float64 and rounded once to the tensor's dtype, by these functions alone, so that
// training, eval and export (whose TorchScript spells out the same operations) agree bit for bit.
// With model.features atom_centered and energies in the data, each element's energy b_Z (element_energies, fitted to
// the training energies: train/standardization_fit.h) is taken off the values, whether or not data.standardize:
// ṽ = (V − E_a − v0) / s with E_a = Σ_i b_{Z_i} over the atoms (atoms_energy), and V = s · Ṽ + v0 + E_a.
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/named_tensors.h"
#include "config/config.h"
#include "model/features.h"

namespace gradfit::model {

struct Standardization {
  std::vector<double> mean;   // μ (n); empty: not standardized (every function below is then the identity)
  std::vector<double> scale;  // σ (n), > 0
  double value_scale = 1;     // s > 0
  double value_offset = 0;    // v0
  // With model.features: μ_φ and σ_φ (m) of the features over the training rows; empty otherwise.
  std::vector<double> feature_mean, feature_scale;
  // With atom_centered and energies: b_Z per element of the model (ascending atomic number), and E_a = Σ_i b_{Z_i}
  // over the atoms of the data's frames (atoms_energy_of); empty and 0 otherwise.
  std::vector<double> element_energies;
  double atoms_energy = 0;
  // data.standardize's scaling (x, S and V; with features φ).
  bool active() const { return !mean.empty(); }
  bool operator==(const Standardization& o) const {
    return mean == o.mean && scale == o.scale && value_scale == o.value_scale && value_offset == o.value_offset &&
           feature_mean == o.feature_mean && feature_scale == o.feature_scale &&
           element_energies == o.element_energies && atoms_energy == o.atoms_energy;
  }
};

// The features of `spec` for points of n components, scaled as `st` says (data.standardize with features).
Features features_for(const config::ModelSpec& spec, int64_t n, const Standardization& st);

// x (B×n, user units) -> x̃, in x's dtype.
torch::Tensor standardize_inputs(const Standardization& st, const torch::Tensor& x);
// S (B×n) -> S̃ = S · (σ / s), in S's dtype.
torch::Tensor standardize_gradients(const Standardization& st, const torch::Tensor& grad_samples);
// Σ_i b_{Z_i} over atoms of atomic numbers `numbers`, in their order (float64), with `element_energies` b_Z of the
// model's `elements` (ascending); 0 without element energies.
double atoms_energy_of(const std::vector<double>& element_energies, const std::vector<int64_t>& elements,
                       const std::vector<int64_t>& numbers);

// V (B) -> ṽ = (V − E_a − v0) / s, in V's dtype.
torch::Tensor standardize_values(const Standardization& st, const torch::Tensor& values);
// The model's Ṽ (B) -> V = Ṽ · s + v0 + E_a, and ∂Ṽ/∂x̃ (B×n) -> ∂V/∂x = ∂Ṽ/∂x̃ · (s / σ), in their dtypes.
torch::Tensor user_values(const Standardization& st, const torch::Tensor& model_values);
torch::Tensor user_gradients(const Standardization& st, const torch::Tensor& model_gradients);
// σ_i / s and s / σ_i, per component (n), each one IEEE division in float64: the factors of S̃ and of ∂V/∂x.
std::vector<double> target_factors(const Standardization& st);
std::vector<double> gradient_factors(const Standardization& st);
// (s / σ_i)², per component (n): a squared gradient error in the model's units times this is one in the user's.
std::vector<double> squared_gradient_factors(const Standardization& st, int64_t dim);

// The weights of an MLP (Mlp::parameters() order, by name) trained under `from`, re-expressed as the same function
// of x in the user's units under `to` (input_dim: the MLP's inputs, n, or m with features): the first layer takes
// the change of x̃ (or of φ̃), the output layer that of s and v0. Exact arithmetic aside, V(x) is unchanged. A
// no-op when from == to. With element energies (atom_centered, never standardized), each element's network's output
// bias takes the change of its b_Z instead (weights in Mlp::parameters() order: network after network).
NamedTensors reparameterize(const NamedTensors& weights, const Standardization& from, const Standardization& to,
                            int64_t input_dim);

}  // namespace gradfit::model
