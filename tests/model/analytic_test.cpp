#include "model/analytic.h"

#include <gtest/gtest.h>

#include <tuple>

#include "model/loss.h"

namespace gradfit::model {
namespace {

using config::Activation;

// (activation, hidden widths, value term on, chunk rows)
using Case = std::tuple<Activation, std::vector<int64_t>, bool, int64_t>;

class AnalyticVsAutograd : public ::testing::TestWithParam<Case> {};

double relative_difference(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).norm() / b.norm()).item<double>();
}

// The hand-written double backward gives autograd's weight gradients and loss sums, in float64, on fresh random
// inputs, for every activation, depth, chunking (including chunks that do not divide the rows) and value term.
TEST_P(AnalyticVsAutograd, GradientsAndSumsMatchTo1e12) {
  const auto& [activation, widths, with_value, chunk_rows] = GetParam();
  const int64_t rows = 37, dim = 3, count = 50;  // count: the global batch, larger than this rank's rows
  const double value_weight = with_value ? 0.7 : 0.0;
  torch::manual_seed(static_cast<uint64_t>(activation) * 100 + widths.size() * 10 + chunk_rows);
  const auto x = torch::randn({rows, dim}, torch::kFloat64);
  const auto s = torch::randn({rows, dim}, torch::kFloat64) * 3;
  const auto v = torch::randn({rows}, torch::kFloat64);
  config::ModelSpec spec;
  spec.widths = widths;
  spec.activation = activation;
  spec.dtype = config::DType::float64;
  Mlp model = make_mlp(spec, dim, /*seed=*/7);

  const auto terms = gradient_matching_loss(model, x, s, v, value_weight, count);
  terms.loss.backward();
  std::vector<torch::Tensor> reference, grads;
  for (const auto& p : model->parameters()) {
    reference.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
    grads.push_back(torch::zeros_like(p));
  }

  AnalyticLoss analytic(model, chunk_rows);
  auto sums = torch::zeros({2}, torch::kFloat64);
  analytic.accumulate(x, s, v, value_weight, count, grads, sums);
  EXPECT_LT(std::abs(sums[0].item<double>() / terms.grad_sse.item<double>() - 1), 1e-12);
  if (with_value) {
    EXPECT_LT(std::abs(sums[1].item<double>() / terms.value_sse.item<double>() - 1), 1e-12);
  }
  double worst = 0;
  for (size_t i = 0; i < grads.size(); ++i) {
    if (reference[i].norm().item<double>() == 0) {  // the output bias without a value term
      EXPECT_EQ(grads[i].norm().item<double>(), 0) << "parameter " << i;
      continue;
    }
    const double rel = relative_difference(grads[i], reference[i]);
    worst = std::max(worst, rel);
    EXPECT_LT(rel, 1e-12) << "parameter " << i;
  }
  std::printf("[ %s depth=%zu value=%d chunk=%lld ] worst relative difference from autograd: %.3e\n",
              config::to_string(activation), widths.size(), with_value, static_cast<long long>(chunk_rows), worst);

  auto eval_sums = torch::zeros({2}, torch::kFloat64);
  analytic.evaluate(x, s, v, value_weight, eval_sums);
  EXPECT_LT(std::abs(eval_sums[0].item<double>() / terms.grad_sse.item<double>() - 1), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(AllActivations, AnalyticVsAutograd,
                         ::testing::Combine(::testing::Values(Activation::relu, Activation::tanh, Activation::softplus,
                                                              Activation::silu, Activation::gelu),
                                            ::testing::Values(std::vector<int64_t>{6}, std::vector<int64_t>{6, 5, 4}),
                                            ::testing::Bool(), ::testing::Values(int64_t{8}, int64_t{64})));

// Softplus beyond LibTorch's threshold (z > 20, where it is linear) matches autograd too.
TEST(AnalyticLoss, SoftplusBeyondItsThresholdMatchesAutograd) {
  torch::manual_seed(9);
  const auto x = torch::randn({40, 2}, torch::kFloat64) * 40;  // most pre-activations far beyond ±20
  const auto s = torch::randn({40, 2}, torch::kFloat64);
  config::ModelSpec spec;
  spec.widths = {8, 8};
  spec.dtype = config::DType::float64;
  Mlp model = make_mlp(spec, 2, 4);
  gradient_matching_loss(model, x, s, torch::Tensor(), 0, 40).loss.backward();
  std::vector<torch::Tensor> grads;
  for (const auto& p : model->parameters()) grads.push_back(torch::zeros_like(p));
  auto sums = torch::zeros({2}, torch::kFloat64);
  AnalyticLoss(model, 16).accumulate(x, s, torch::Tensor(), 0, 40, grads, sums);
  const auto params = model->parameters();
  for (size_t i = 0; i + 1 < params.size(); ++i)
    EXPECT_LT(relative_difference(grads[i], params[i].grad()), 1e-12) << "parameter " << i;
}

// In float32 (where the CPU computes the activations by model/kernels.h's own polynomials) the analytic engine's
// gradients and sums equal float64 autograd's on the same weights to float32 rounding, for every activation.
TEST(AnalyticLoss, Float32MatchesFloat64Autograd) {
  const int64_t rows = 300, dim = 3, count = 300;
  for (const auto activation :
       {Activation::relu, Activation::tanh, Activation::softplus, Activation::silu, Activation::gelu}) {
    for (const bool with_value : {false, true}) {
      torch::manual_seed(static_cast<uint64_t>(activation) + 50);
      const auto x = torch::randn({rows, dim}, torch::kFloat64) * 2;
      const auto s = torch::randn({rows, dim}, torch::kFloat64);
      const auto v = torch::randn({rows}, torch::kFloat64);
      const double value_weight = with_value ? 0.5 : 0.0;
      config::ModelSpec spec;
      spec.widths = {32, 32};
      spec.activation = activation;
      spec.dtype = config::DType::float32;
      Mlp model32 = make_mlp(spec, dim, 11);
      spec.dtype = config::DType::float64;
      Mlp model64 = make_mlp(spec, dim, 11);
      {
        torch::NoGradGuard no_grad;
        const auto p32 = model32->parameters(), p64 = model64->parameters();
        for (size_t i = 0; i < p32.size(); ++i) p64[i].copy_(p32[i]);
      }
      const auto terms = gradient_matching_loss(model64, x, s, v, value_weight, count);
      terms.loss.backward();
      std::vector<torch::Tensor> grads;
      for (const auto& p : model32->parameters()) grads.push_back(torch::zeros_like(p));
      auto sums = torch::zeros({2}, torch::kFloat32);
      AnalyticLoss(model32, 64)
          .accumulate(x.to(torch::kFloat32), s.to(torch::kFloat32), v.to(torch::kFloat32), value_weight, count, grads,
                      sums);
      EXPECT_LT(std::abs(sums[0].item<double>() / terms.grad_sse.item<double>() - 1), 1e-5);
      const auto p64 = model64->parameters();
      double worst = 0;
      for (size_t i = 0; i < grads.size(); ++i) {
        if (!p64[i].grad().defined() || p64[i].grad().norm().item<double>() == 0) continue;
        worst = std::max(worst, relative_difference(grads[i].to(torch::kFloat64), p64[i].grad()));
      }
      std::printf("[ %s value=%d ] float32 against float64 autograd: worst relative difference %.3e\n",
                  config::to_string(activation), with_value, worst);
      EXPECT_LT(worst, 1e-5) << config::to_string(activation);
      EXPECT_GT(worst, 0) << "float32 cannot equal float64 exactly";
    }
  }
}

// Gradients accumulate: two calls over two halves of the rows equal one call over all of them.
TEST(AnalyticLoss, AccumulatesOverCalls) {
  torch::manual_seed(3);
  const auto x = torch::randn({20, 2}, torch::kFloat64);
  const auto s = torch::randn({20, 2}, torch::kFloat64);
  config::ModelSpec spec;
  spec.widths = {8, 8};
  spec.dtype = config::DType::float64;
  Mlp model = make_mlp(spec, 2, 1);
  AnalyticLoss analytic(model, 16);
  std::vector<torch::Tensor> whole, halves;
  for (const auto& p : model->parameters()) {
    whole.push_back(torch::zeros_like(p));
    halves.push_back(torch::zeros_like(p));
  }
  auto sums_whole = torch::zeros({2}, torch::kFloat64), sums_halves = torch::zeros({2}, torch::kFloat64);
  analytic.accumulate(x, s, torch::Tensor(), 0, 20, whole, sums_whole);
  analytic.accumulate(x.narrow(0, 0, 9), s.narrow(0, 0, 9), torch::Tensor(), 0, 20, halves, sums_halves);
  analytic.accumulate(x.narrow(0, 9, 11), s.narrow(0, 9, 11), torch::Tensor(), 0, 20, halves, sums_halves);
  for (size_t i = 0; i + 1 < whole.size(); ++i) EXPECT_LT(relative_difference(halves[i], whole[i]), 1e-13);
  EXPECT_LT(relative_difference(sums_halves, sums_whole), 1e-13);
}

// An ensemble of three models with other weights: each model's gradients and sums equal those of the model alone,
// exactly with products one model at a time (the CPU's way) and to rounding with products batched over the
// models (the GPU's way, run here on the CPU), for every activation, with and without a value term, in chunks.
TEST(AnalyticLoss, EnsembleEqualsItsModelsAlone) {
  const int64_t models = 3, rows = 29, dim = 3, count = 40;
  const std::vector<int64_t> widths{7, 5};
  for (const auto activation :
       {Activation::relu, Activation::tanh, Activation::softplus, Activation::silu, Activation::gelu}) {
    for (const bool with_value : {false, true}) {
      torch::manual_seed(static_cast<uint64_t>(activation) + 10 * with_value);
      const auto x = torch::randn({rows, dim}, torch::kFloat64);
      const auto s = torch::randn({rows, dim}, torch::kFloat64);
      const auto v = torch::randn({rows}, torch::kFloat64);
      const double value_weight = with_value ? 0.3 : 0.0;
      config::ModelSpec spec;
      spec.widths = widths;
      spec.activation = activation;
      spec.dtype = config::DType::float64;
      std::vector<Mlp> alone;
      std::vector<torch::Tensor> rows_of_params;
      for (int64_t r = 0; r < models; ++r) {
        alone.push_back(make_mlp(spec, dim, 20 + r));
        std::vector<torch::Tensor> flat;
        for (const auto& p : alone.back()->parameters()) flat.push_back(p.detach().reshape(-1));
        rows_of_params.push_back(torch::cat(flat));
      }
      const auto flat = torch::stack(rows_of_params);
      for (const bool batched : {false, true}) {
        AnalyticLoss ensemble(activation, ensemble_views(flat, dim, widths), /*chunk_rows=*/8);
        if (batched) ensemble.batch_products_on_cpu();
        auto flat_grads = torch::zeros_like(flat);
        auto grads = ensemble_views(flat_grads, dim, widths);
        auto sums = torch::zeros({models, 2}, torch::kFloat64);
        ensemble.accumulate(x, s, v, value_weight, count, grads, sums);
        double worst = 0;
        for (int64_t r = 0; r < models; ++r) {
          std::vector<torch::Tensor> own;
          for (const auto& p : alone[r]->parameters()) own.push_back(torch::zeros_like(p));
          auto own_sums = torch::zeros({2}, torch::kFloat64);
          AnalyticLoss(alone[r], 8).accumulate(x, s, v, value_weight, count, own, own_sums);
          for (size_t i = 0; i < own.size(); ++i) {
            if (own[i].norm().item<double>() == 0) {
              EXPECT_EQ(grads[i][r].norm().item<double>(), 0);
              continue;
            }
            if (!batched) {
              EXPECT_TRUE(torch::equal(grads[i][r], own[i])) << "model " << r << " parameter " << i;
            }
            worst = std::max(worst, relative_difference(grads[i][r], own[i]));
          }
          if (!batched) {
            EXPECT_TRUE(torch::equal(sums[r], own_sums)) << "model " << r;
          }
          worst = std::max(worst, relative_difference(sums[r], own_sums));
        }
        EXPECT_LT(worst, 1e-13) << config::to_string(activation) << (batched ? " batched" : " per model");
        if (batched)
          std::printf("[ %s value=%d ] batched products: worst relative difference from the models alone %.3e\n",
                      config::to_string(activation), with_value, worst);
      }
    }
  }
}

}  // namespace
}  // namespace gradfit::model
