#pragma once
// model.features inverse_distances: x holds the Cartesian coordinates of a atoms (x₁, y₁, z₁, x₂, ...; n = 3a);
// φ holds 1/‖r_i − r_j‖ for i < j in row-major order of the pairs, m = a(a − 1)/2. Each feature depends on 6
// coordinates: ∂φ_ij/∂r_i = −φ_ij³ (r_i − r_j) = −∂φ_ij/∂r_j. V is then invariant to rotations and translations.
// FeatureRows: first = r_i − r_j (B × pairs × 3), second = φ³ (B × pairs).
#include "model/feature_map.h"

namespace gradfit::model {

class InverseDistanceFeatures final : public FeatureMap {
 public:
  explicit InverseDistanceFeatures(int64_t n);
  const char* name() const override { return "inverse_distances"; }
  torch::Tensor phi(const torch::Tensor& x) const override;
  FeatureRows at(const torch::Tensor& x) const override;
  torch::Tensor transpose_times(const FeatureRows& rows, const torch::Tensor& g) const override;
  torch::Tensor times(const FeatureRows& rows, const torch::Tensor& r) const override;
  // r_i − r_j and φ³ per pair and the products of Jᵀ and J (about 12 numbers a pair), dV/dx and its residual (2n).
  double elements_per_row() const override { return 12 * static_cast<double>(dim()) + 2 * double(input_dim()); }
  // Two atoms at one place (an infinite feature).
  RowProblem first_problem(const torch::Tensor& x) const override;
  std::string script() const override;
  NamedTensors script_buffers(torch::Dtype dtype) const override;

 private:
  const torch::Tensor& pair_i(const torch::Tensor& like) const { return pairs_.like(like)[0]; }
  const torch::Tensor& pair_j(const torch::Tensor& like) const { return pairs_.like(like)[1]; }
  TablesLike pairs_;  // the atoms i and j of each pair (int64)
};

}  // namespace gradfit::model
