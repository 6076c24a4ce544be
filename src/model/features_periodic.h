#pragma once
// model.features periodic: with periods L (n; 0 where a component is not periodic), component by component the
// pair (cos θ_i, sin θ_i), θ_i = 2π x_i / L_i, for a periodic one, x_i for another; m = n + periodic ones. V is
// then periodic in x_i with period L_i. FeatureRows: first = −sin θ · 2π/L = ∂cos θ/∂x and second = cos θ · 2π/L
// = ∂sin θ/∂x (B × n, 0 where not periodic).
#include <vector>

#include "model/feature_map.h"

namespace gradfit::model {

class PeriodicFeatures final : public FeatureMap {
 public:
  explicit PeriodicFeatures(const std::vector<double>& periods);
  const char* name() const override { return "periodic"; }
  torch::Tensor phi(const torch::Tensor& x) const override;
  FeatureRows at(const torch::Tensor& x) const override;
  torch::Tensor transpose_times(const FeatureRows& rows, const torch::Tensor& g) const override;
  torch::Tensor times(const FeatureRows& rows, const torch::Tensor& r) const override;
  // The blocks [x, cos θ, sin θ] and J's two factors (about 8 numbers a component), dV/dx and its residual (2n).
  double elements_per_row() const override { return 10 * static_cast<double>(input_dim()); }
  std::string script() const override;
  NamedTensors script_buffers(torch::Dtype dtype) const override;

 private:
  // φ's columns in the block [x, cos θ, sin θ] (int64), and 2π / L_i (0 where not periodic).
  const torch::Tensor& columns(const torch::Tensor& like) const { return tables_.like(like)[0]; }
  const torch::Tensor& angular(const torch::Tensor& like) const { return tables_.like(like)[1]; }
  // [x, cos, sin] (B × 3n) gathered into φ's order.
  torch::Tensor gathered(const torch::Tensor& x, const torch::Tensor& cos, const torch::Tensor& sin) const;
  TablesLike tables_;
};

}  // namespace gradfit::model
