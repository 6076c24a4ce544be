// A feature kind added the way docs/architecture.md ("Adding a feature kind") says, here without a configuration
// name: a class on model::FeatureMap. Everything that takes Features then takes it: autograd through its φ, the
// analytic engine through its J, its TorchScript. φ_i = x_i², J = diag(2x).
#include <gtest/gtest.h>
#include <torch/script.h>

#include <memory>

#include "model/analytic.h"
#include "model/feature_map.h"
#include "model/features.h"
#include "model/loss.h"
#include "model/mlp.h"

namespace gradfit::model {
namespace {

class SquareFeatures final : public FeatureMap {
 public:
  explicit SquareFeatures(int64_t n) : FeatureMap(n, n) {}
  const char* name() const override { return "squares"; }
  torch::Tensor phi(const torch::Tensor& x) const override { return x * x; }
  FeatureRows at(const torch::Tensor& x) const override { return {x * x, x * 2.0, {}}; }
  torch::Tensor transpose_times(const FeatureRows& rows, const torch::Tensor& g) const override {
    return g * rows.first;
  }
  torch::Tensor times(const FeatureRows& rows, const torch::Tensor& r) const override { return r * rows.first; }
  double elements_per_row() const override { return 2 * static_cast<double>(input_dim()); }
  std::string script() const override {
    return "def phi(self, x: Tensor) -> Tensor:\n    return x * x\n\n"
           "def phi_transpose(self, x: Tensor, g: Tensor) -> Tensor:\n    return g * (x * 2.0)\n\n";
  }
};

double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

TEST(ToyFeatureKind, JacobianAndScriptMatchTheReference) {
  torch::manual_seed(12);
  const Features features(std::make_shared<SquareFeatures>(5));
  const auto x = torch::randn({11, 5}, torch::kFloat64);
  const auto at = features.at(x);
  const auto leaf = x.clone().requires_grad_(true);
  const auto phi = features(leaf);
  const auto g = torch::randn({11, 5}, torch::kFloat64);
  const auto expected = torch::autograd::grad({phi}, {leaf}, {g})[0];
  EXPECT_LT(relative_difference(features.transpose_times(at, g), expected), 1e-15);
  const auto r = torch::randn({11, 5}, torch::kFloat64);
  EXPECT_NEAR((features.times(at, r) * g).sum().item<double>(),
              (r * features.transpose_times(at, g)).sum().item<double>(), 1e-12);

  torch::jit::Module script("__torch__.gradfit.Toy");
  script.define(features.script());
  EXPECT_TRUE(torch::equal(script.run_method("features", x).toTensor(), at.phi));
  EXPECT_TRUE(torch::equal(script.run_method("features_transpose", x, g).toTensor(), features.transpose_times(at, g)));
}

// Double backward through the toy kind: the analytic engine's weight gradients are autograd's.
TEST(ToyFeatureKind, AnalyticEngineMatchesAutograd) {
  torch::manual_seed(13);
  const int64_t rows = 17, n = 4;
  const auto x = torch::randn({rows, n}, torch::kFloat64);
  const auto s = torch::randn({rows, n}, torch::kFloat64);
  const auto v = torch::randn({rows}, torch::kFloat64);
  Mlp model(Features(std::make_shared<SquareFeatures>(n)), std::vector<std::vector<int64_t>>{{6, 5}},
            config::Activation::tanh);
  model->to(torch::kFloat64);
  const auto terms = gradient_matching_loss(model, x, s, v, /*value_weight=*/0.5, rows);
  terms.loss.backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters()) grads.push_back(torch::zeros_like(p));
  auto sums = torch::zeros({2}, torch::kFloat64);
  AnalyticLoss(model, /*chunk_rows=*/5).accumulate(x, s, v, 0.5, rows, grads, sums);
  EXPECT_LT(std::abs(sums[0].item<double>() / terms.grad_sse.item<double>() - 1), 1e-12);
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_LT(relative_difference(grads[i], params[i].grad()), 1e-12) << "parameter " << i;
}

}  // namespace
}  // namespace gradfit::model
