#pragma once
// model.features identity: φ(x) = x (m = n), J = I.
#include "model/feature_map.h"

namespace gradfit::model {

class IdentityFeatures final : public FeatureMap {
 public:
  explicit IdentityFeatures(int64_t n) : FeatureMap(n, n) {}
  const char* name() const override { return "identity"; }
  bool is_identity() const override { return true; }
  torch::Tensor phi(const torch::Tensor& x) const override { return x; }
  FeatureRows at(const torch::Tensor& x) const override { return {x, {}, {}}; }
  torch::Tensor transpose_times(const FeatureRows&, const torch::Tensor& g) const override { return g; }
  torch::Tensor times(const FeatureRows&, const torch::Tensor& r) const override { return r; }
  double elements_per_row() const override { return 0; }
  std::string script() const override {
    return "def phi(self, x: Tensor) -> Tensor:\n    return x\n\n"
           "def phi_transpose(self, x: Tensor, g: Tensor) -> Tensor:\n    return g\n\n";
  }
};

}  // namespace gradfit::model
