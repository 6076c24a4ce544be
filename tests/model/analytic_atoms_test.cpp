// The analytic engine where φ is per atom (model.features atom_centered): one network per element, summed over the
// atoms. Against double backward through autograd (the reference) in float64; end to end against PyTorch by
// cli.atom_centered_matches_pytorch.
#include "model/analytic_atoms.h"

#include <gtest/gtest.h>

#include <cmath>

#include "model/atom_centered_molecule.h"
#include "model/features_atom_centered.h"
#include "model/loss.h"
#include "model/mlp.h"

namespace gradfit::model {
namespace {

double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

config::ModelSpec spec_of() {
  return small_molecule::small_descriptor_spec(small_molecule::kNumbers, config::Activation::softplus);
}

torch::Tensor frames(int64_t rows) {
  return small_molecule::molecule_frames(rows);
}

// Each model's parameters flat, one row per model (the trainer's Weights::flat).
torch::Tensor flat_of(const std::vector<Mlp>& models) {
  std::vector<torch::Tensor> rows;
  for (const auto& model : models) {
    std::vector<torch::Tensor> flat;
    for (const auto& p : model->parameters()) flat.push_back(p.detach().reshape(-1));
    rows.push_back(torch::cat(flat));
  }
  return torch::stack(rows);
}

struct Inputs {
  torch::Tensor x, s, v, weights;
};

Inputs inputs_of(int64_t rows) {
  return {frames(rows), torch::randn({rows, 15}, torch::kFloat64), torch::randn({rows}, torch::kFloat64),
          torch::rand({rows}, torch::kFloat64) + 0.5};
}

// The weight gradients and loss sums of autograd's double backward and of the engine agree to 1e-12 for one model,
// in chunks of 4 frames (the last one short), with and without energies, row weights and the Huber loss; the
// validation pass gives the same sums. Every element's network of model.widths, and with model.element_widths
// (H: one layer of 4, O: three layers 5-3-2, C: model.widths).
class AtomsAnalyticWidths : public ::testing::TestWithParam<bool> {};

TEST_P(AtomsAnalyticWidths, MatchesAutograd) {
  torch::manual_seed(2);
  const int64_t rows = 11, count = 14;
  const Inputs in = inputs_of(rows);
  auto spec = spec_of();
  if (GetParam()) spec.element_widths = {{1, {4}}, {8, {5, 3, 2}}};
  const Features features(spec, 15);
  const NetworkShape shape = network_shape(spec, 15);
  for (const double value_weight : {0.0, 0.4}) {
    for (const bool weighted : {false, true}) {
      for (const auto loss : {config::Loss::mse, config::Loss::huber}) {
        const GradientLoss gradient_loss{loss, 0.7};
        const auto weights = weighted ? in.weights : torch::Tensor();
        Mlp model = make_mlp(spec, 15, /*seed=*/5);
        const auto terms =
            gradient_matching_loss(model, in.x, in.s, in.v, value_weight, count, true, gradient_loss, weights);
        terms.loss.backward();
        const auto flat = flat_of({model});
        auto flat_grads = torch::zeros_like(flat);
        auto grads = ensemble_views(flat_grads, shape);
        AtomsAnalyticLoss analytic(spec.activation, ensemble_views(flat, shape), shape, /*chunk_rows=*/4, features);
        analytic.set_gradient_loss(gradient_loss);
        auto sums = torch::zeros({1, 3}, torch::kFloat64);
        analytic.accumulate(in.x, in.s, in.v, value_weight, count, grads, sums, weights);
        const std::string where = "value_weight " + std::to_string(value_weight) + (weighted ? ", weighted" : "") +
                                  (loss == config::Loss::huber ? ", huber" : "");
        EXPECT_LT(std::abs(sums[0][0].item<double>() / terms.grad_sse.item<double>() - 1), 1e-12) << where;
        EXPECT_LT(
            std::abs(sums[0][2].item<double>() - (loss == config::Loss::huber ? terms.grad_loss.item<double>() : 0)),
            1e-12 * terms.grad_loss.item<double>())
            << where;
        if (value_weight > 0) {
          EXPECT_LT(std::abs(sums[0][1].item<double>() / terms.value_sse.item<double>() - 1), 1e-12) << where;
        }
        auto eval_sums = torch::zeros({1, 3}, torch::kFloat64);
        analytic.evaluate(in.x, in.s, in.v, value_weight, eval_sums, weights);
        EXPECT_TRUE(torch::equal(eval_sums, sums)) << where;
        const auto params = model->parameters();
        for (size_t i = 0; i < params.size(); ++i) {
          if (!params[i].grad().defined()) {  // the output biases without a value term
            EXPECT_EQ(grads[i].norm().item<double>(), 0) << where << ", parameter " << i;
            continue;
          }
          EXPECT_LT(relative_difference(grads[i][0], params[i].grad()), 1e-12) << where << ", parameter " << i;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(ModelAndElementWidths, AtomsAnalyticWidths, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "ElementWidths" : "ModelWidths"; });

// An ensemble: each model's gradient and sums are those it gets alone, to the last bit.
TEST(AtomsAnalytic, EnsembleEqualsItsModelsAlone) {
  torch::manual_seed(3);
  const int64_t models = 3, rows = 9, count = 12;
  const Inputs in = inputs_of(rows);
  const auto spec = spec_of();
  const Features features(spec, 15);
  const NetworkShape shape = network_shape(spec, 15);
  std::vector<Mlp> alone;
  for (int64_t r = 0; r < models; ++r) alone.push_back(make_mlp(spec, 15, 20 + r));
  const auto flat = flat_of(alone);
  auto flat_grads = torch::zeros_like(flat);
  auto grads = ensemble_views(flat_grads, shape);
  auto sums = torch::zeros({models, 3}, torch::kFloat64);
  AtomsAnalyticLoss(spec.activation, ensemble_views(flat, shape), shape, 4, features)
      .accumulate(in.x, in.s, in.v, 0.3, count, grads, sums);
  for (int64_t r = 0; r < models; ++r) {
    const auto own_flat = flat_of({alone[r]});
    auto own_flat_grads = torch::zeros_like(own_flat);
    auto own = ensemble_views(own_flat_grads, shape);
    auto own_sums = torch::zeros({1, 3}, torch::kFloat64);
    AtomsAnalyticLoss(spec.activation, ensemble_views(own_flat, shape), shape, 4, features)
        .accumulate(in.x, in.s, in.v, 0.3, count, own, own_sums);
    EXPECT_TRUE(torch::equal(flat_grads[r], own_flat_grads[0])) << "model " << r;
    EXPECT_TRUE(torch::equal(sums[r], own_sums[0])) << "model " << r;
    EXPECT_GT(own_flat_grads.norm().item<double>(), 0);
  }
}

}  // namespace
}  // namespace gradfit::model
