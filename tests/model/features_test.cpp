#include "model/features.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/analytic.h"
#include "model/loss.h"

namespace gradfit::model {
namespace {

using Kind = config::FeatureKind;  // model::Features is the class under test

double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

config::ModelSpec spec_of(Kind kind) {
  config::ModelSpec spec;
  spec.widths = {7, 5};
  spec.activation = config::Activation::tanh;
  spec.dtype = config::DType::float64;
  spec.features = kind;
  if (kind == Kind::periodic) spec.periods = {2 * M_PI, 0, 1.5, 0};
  return spec;
}

// Points for each kind: 4 atoms (n = 12) well apart, or 4 components.
torch::Tensor points(Kind kind, int64_t rows) {
  if (kind == Kind::inverse_distances)
    return (torch::randn({rows, 12}, torch::kFloat64) + torch::arange(12, torch::kFloat64).remainder(3) * 2) * 0.7;
  return torch::randn({rows, 4}, torch::kFloat64) * 3;
}

class FeaturesJacobian : public ::testing::TestWithParam<Kind> {};

// Jᵀ g equals autograd's vector-Jacobian product through φ's differentiable form, for one model's g and for an
// ensemble's (R × B × m); J r is its adjoint (⟨J r, g⟩ = ⟨r, Jᵀ g⟩); at() computes the same φ to the last bit.
TEST_P(FeaturesJacobian, TransposeMatchesAutogradAndJIsItsAdjoint) {
  const Kind kind = GetParam();
  torch::manual_seed(3);
  const int64_t rows = 9;
  const auto x = points(kind, rows);
  const config::ModelSpec spec = spec_of(kind);
  const Features features(spec, x.size(1));
  ASSERT_EQ(features.dim(), 6);  // 6 pairs of 4 atoms; or 2 periodic components of 4 as pairs, 2 as they are
  const auto at = features.at(x);
  const auto leaf = x.clone().requires_grad_(true);
  const auto phi = features(leaf);
  EXPECT_TRUE(torch::equal(phi.detach(), at.phi));
  const auto g = torch::randn({3, rows, features.dim()}, torch::kFloat64);
  for (int64_t r = 0; r < 3; ++r) {
    const auto expected = torch::autograd::grad({phi}, {leaf}, {g[r]}, /*retain_graph=*/true)[0];
    EXPECT_LT(relative_difference(features.transpose_times(at, g[r]), expected), 1e-14) << "model " << r;
    EXPECT_LT(relative_difference(features.transpose_times(at, g).select(0, r), expected), 1e-14) << "model " << r;
  }
  const auto r = torch::randn({3, rows, x.size(1)}, torch::kFloat64);
  const auto jr = features.times(at, r);
  ASSERT_EQ(jr.sizes(), g.sizes());
  const double lhs = (jr * g).sum().item<double>();
  const double rhs = (r * features.transpose_times(at, g)).sum().item<double>();
  EXPECT_NEAR(lhs, rhs, 1e-13 * std::abs(rhs));
  EXPECT_TRUE(torch::equal(features.times(at, r[1]), jr[1]));
}

// The analytic engine through φ gives autograd's weight gradients and loss sums (double backward through the same
// φ), for one model and for an ensemble of two, with and without a value term.
TEST_P(FeaturesJacobian, AnalyticEngineMatchesAutogradThroughTheFeatures) {
  const Kind kind = GetParam();
  torch::manual_seed(4);
  const int64_t rows = 23, count = 30;
  const auto x = points(kind, rows);
  const auto s = torch::randn({rows, x.size(1)}, torch::kFloat64);
  const auto v = torch::randn({rows}, torch::kFloat64);
  const config::ModelSpec spec = spec_of(kind);
  for (const double value_weight : {0.0, 0.4}) {
    Mlp model = make_mlp(spec, x.size(1), /*seed=*/11);
    const auto terms = gradient_matching_loss(model, x, s, v, value_weight, count);
    terms.loss.backward();
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) grads.push_back(torch::zeros_like(p));
    auto sums = torch::zeros({2}, torch::kFloat64);
    AnalyticLoss analytic(model, /*chunk_rows=*/8);
    analytic.accumulate(x, s, v, value_weight, count, grads, sums);
    EXPECT_LT(std::abs(sums[0].item<double>() / terms.grad_sse.item<double>() - 1), 1e-12);
    auto eval_sums = torch::zeros({2}, torch::kFloat64);  // validation's pass: the sums alone
    analytic.evaluate(x, s, v, value_weight, eval_sums);
    EXPECT_TRUE(torch::equal(eval_sums, sums));
    const auto params = model->parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      if (!params[i].grad().defined()) {  // the output bias without a value term
        EXPECT_EQ(grads[i].norm().item<double>(), 0);
        continue;
      }
      EXPECT_LT(relative_difference(grads[i], params[i].grad()), 1e-12) << "parameter " << i;
    }
  }
}

// An ensemble through the features: each model's gradient and sums are those it gets alone, to the last bit (the
// features' work is row by row and the same for every model), per model and batched.
TEST_P(FeaturesJacobian, EnsembleEqualsItsModelsAlone) {
  const Kind kind = GetParam();
  torch::manual_seed(8);
  const int64_t models = 3, rows = 19, count = 25;
  const auto x = points(kind, rows);
  const auto s = torch::randn({rows, x.size(1)}, torch::kFloat64);
  const auto v = torch::randn({rows}, torch::kFloat64);
  const config::ModelSpec spec = spec_of(kind);
  const int64_t m = feature_dim(spec, x.size(1));
  std::vector<Mlp> alone;
  std::vector<torch::Tensor> rows_of_params;
  for (int64_t r = 0; r < models; ++r) {
    alone.push_back(make_mlp(spec, x.size(1), 30 + r));
    std::vector<torch::Tensor> flat;
    for (const auto& p : alone.back()->parameters()) flat.push_back(p.detach().reshape(-1));
    rows_of_params.push_back(torch::cat(flat));
  }
  const auto flat = torch::stack(rows_of_params);
  for (const bool batched : {false, true}) {
    AnalyticLoss ensemble(spec.activation, ensemble_views(flat, m, spec.widths), /*chunk_rows=*/8);
    ensemble.set_features(Features(spec, x.size(1)));
    if (batched) ensemble.batch_products_on_cpu();
    auto flat_grads = torch::zeros_like(flat);
    auto grads = ensemble_views(flat_grads, m, spec.widths);
    auto sums = torch::zeros({models, 2}, torch::kFloat64);
    ensemble.accumulate(x, s, v, 0.3, count, grads, sums);
    for (int64_t r = 0; r < models; ++r) {
      std::vector<torch::Tensor> own;
      for (const auto& p : alone[r]->parameters()) own.push_back(torch::zeros_like(p));
      auto own_sums = torch::zeros({2}, torch::kFloat64);
      AnalyticLoss(alone[r], 8).accumulate(x, s, v, 0.3, count, own, own_sums);
      for (size_t i = 0; i < own.size(); ++i) {
        if (batched) {  // batched products round differently from one model's
          EXPECT_LT(relative_difference(grads[i][r], own[i]), 1e-13) << "model " << r << " parameter " << i;
        } else {
          EXPECT_TRUE(torch::equal(grads[i][r], own[i])) << "model " << r << " parameter " << i;
        }
      }
      if (!batched) {
        EXPECT_TRUE(torch::equal(sums[r], own_sums)) << "model " << r;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(BothKinds, FeaturesJacobian, ::testing::Values(Kind::inverse_distances, Kind::periodic),
                         [](const auto& info) { return std::string(config::to_string(info.param)); });

// Inverse distances do not change when every atom turns about an axis and moves by the same vector.
TEST(Features, InverseDistancesAreInvariantToRotationAndTranslation) {
  torch::manual_seed(5);
  const auto x = points(Kind::inverse_distances, 6);
  const double c = std::cos(0.7), s = std::sin(0.7);
  const auto rotation = torch::tensor({{c, -s, 0.0}, {s, c, 0.0}, {0.0, 0.0, 1.0}}, torch::kFloat64);
  const auto moved =
      (x.view({6, 4, 3}).matmul(rotation.t()) + torch::tensor({1.5, -2.0, 0.3}, torch::kFloat64)).reshape({6, 12});
  const Features features(spec_of(Kind::inverse_distances), 12);
  EXPECT_LT(relative_difference(features(moved), features(x)), 1e-14);
}

// Periodic features repeat with the period of each periodic component, and keep the others as they are.
TEST(Features, PeriodicFeaturesRepeatWithTheirPeriods) {
  torch::manual_seed(6);
  const auto x = points(Kind::periodic, 5);
  const Features features(spec_of(Kind::periodic), 4);
  const auto phi = features(x);
  ASSERT_EQ(phi.size(1), 6);  // (cos, sin), x_1, (cos, sin), x_3
  EXPECT_TRUE(torch::equal(phi.select(1, 2), x.select(1, 1)));
  EXPECT_TRUE(torch::equal(phi.select(1, 5), x.select(1, 3)));
  auto shifted = x.clone();
  shifted.select(1, 0).add_(2 * M_PI);
  shifted.select(1, 2).sub_(3.0);  // two periods
  EXPECT_LT((features(shifted) - phi).abs().max().item<double>(), 1e-14);
}

TEST(Features, CoincidentAtomsAreFound) {
  auto x = points(Kind::inverse_distances, 7);
  const Features features(spec_of(Kind::inverse_distances), 12);
  EXPECT_EQ(features.first_problem(x).row, -1);
  x[4].narrow(0, 9, 3).copy_(x[4].narrow(0, 3, 3));  // atom 3 onto atom 1
  const auto hit = features.first_problem(x);
  EXPECT_EQ(hit.row, 4);
  EXPECT_EQ(hit.what, "atoms 1 and 3 are at the same place (model.features inverse_distances needs distinct atoms)");
  // The other kinds take any finite rows.
  EXPECT_EQ(Features(spec_of(Kind::identity), 12).first_problem(x).row, -1);
}

}  // namespace
}  // namespace gradfit::model
