#include "model/loss.h"

#include <gtest/gtest.h>

#include "parallel/grad_sync.h"
#include "test_util.h"

namespace gradfit::config {
// Lets GoogleTest print activations by name.
void PrintTo(Activation a, std::ostream* os) {
  *os << to_string(a);
}
}  // namespace gradfit::config

namespace gradfit::model {
namespace {

using config::Activation;

struct Problem {
  torch::Tensor x, grad_samples, values;
};

Problem random_problem(int64_t rows, int64_t dim) {
  torch::manual_seed(123);
  Problem p;
  p.x = torch::randn({rows, dim}, torch::kFloat64);
  p.grad_samples = torch::randn({rows, dim}, torch::kFloat64);
  p.values = torch::randn({rows}, torch::kFloat64);
  return p;
}

Mlp small_model(Activation activation) {
  config::ModelSpec spec;
  spec.widths = {5, 4};
  spec.activation = activation;
  spec.dtype = config::DType::float64;
  return make_mlp(spec, /*input_dim=*/3, /*seed=*/11);
}

class LossGradient : public ::testing::TestWithParam<Activation> {};

// The weight gradient that double backward produces equals central finite differences of the loss.
TEST_P(LossGradient, MatchesCentralFiniteDifferencesInFloat64) {
  const Problem p = random_problem(/*rows=*/6, /*dim=*/3);
  Mlp model = small_model(GetParam());
  const double value_weight = 0.3;  // the value term too, so that every parameter is checked
  const auto loss_of = [&] {
    return gradient_matching_loss(model, p.x, p.grad_samples, p.values, value_weight, 6).loss.item<double>();
  };

  gradient_matching_loss(model, p.x, p.grad_samples, p.values, value_weight, 6).loss.backward();
  std::vector<torch::Tensor> grads;
  for (const auto& param : model->parameters()) {
    ASSERT_TRUE(param.grad().defined());
    grads.push_back(param.grad().reshape(-1));
  }
  const auto a = torch::cat(grads);
  const auto n = torch::tensor(testing::central_differences(model->parameters(), loss_of), torch::kFloat64);
  const double rel = ((a - n).norm() / n.norm()).item<double>();
  std::printf("[ %s ] %lld weights, relative error vs central differences: %.3e\n", config::to_string(GetParam()),
              static_cast<long long>(a.numel()), rel);
  EXPECT_LT(rel, 1e-6) << "activation " << config::to_string(GetParam());
  EXPECT_GT(n.norm().item<double>(), 1e-3);  // a real gradient, not zeros on both sides
}

INSTANTIATE_TEST_SUITE_P(AllActivations, LossGradient,
                         ::testing::Values(Activation::relu, Activation::tanh, Activation::softplus, Activation::silu,
                                           Activation::gelu),
                         [](const auto& info) { return std::string(config::to_string(info.param)); });

TEST(Loss, IsTheMeanSquaredErrorOfTheInputGradient) {
  const Problem p = random_problem(8, 3);
  Mlp model = small_model(Activation::tanh);
  const auto terms = gradient_matching_loss(model, p.x, p.grad_samples, torch::Tensor(), 0.0, 8);
  // dV/dx by a separate first-order autograd pass.
  auto x = p.x.clone().requires_grad_(true);
  auto v = model->forward(x);
  const auto g = torch::autograd::grad({v}, {x}, {torch::ones_like(v)})[0];
  EXPECT_NEAR(terms.loss.item<double>(), torch::mse_loss(g, p.grad_samples).item<double>(), 1e-14);
  EXPECT_NEAR(terms.grad_sse.item<double>(), (g - p.grad_samples).pow(2).sum().item<double>(), 1e-12);
  EXPECT_EQ(terms.value_sse.item<double>(), 0.0);
  // Dividing by a global count larger than the local batch scales the loss, as a shard's share of the mean.
  const auto shard_terms = gradient_matching_loss(model, p.x, p.grad_samples, torch::Tensor(), 0.0, 32);
  EXPECT_NEAR(shard_terms.loss.item<double>() * 4, terms.loss.item<double>(), 1e-14);
}

// The output bias does not change dV/dx, so a pure gradient loss leaves it without a gradient. The flat allreduce
// must treat that as zeros rather than skip or crash.
TEST(Loss, OutputBiasGetsNoGradientAndTheAllreduceFillsZeros) {
  const Problem p = random_problem(6, 3);
  Mlp model = small_model(Activation::softplus);
  gradient_matching_loss(model, p.x, p.grad_samples, torch::Tensor(), 0.0, 6).loss.backward();
  const auto named = model->named_parameters();
  const auto& output_bias = named["layers.2.bias"];
  EXPECT_FALSE(output_bias.grad().defined());
  EXPECT_TRUE(named["layers.2.weight"].grad().defined());

  auto params = model->parameters();
  parallel::GradientAllreduce allreduce(params, /*extra_slots=*/1);
  const auto extras = allreduce.reduce({torch::full({}, 2.5, torch::kFloat64)}, parallel::Comm(MPI_COMM_SELF));
  ASSERT_TRUE(output_bias.grad().defined());
  EXPECT_EQ(output_bias.grad().abs().sum().item<double>(), 0.0);
  EXPECT_GT(named["layers.0.weight"].grad().abs().sum().item<double>(), 0.0);
  EXPECT_EQ(extras[0].item<double>(), 2.5);

  // With a value term the output bias does get a gradient.
  for (auto& param : params) param.mutable_grad().reset();
  gradient_matching_loss(model, p.x, p.grad_samples, p.values, 1.0, 6).loss.backward();
  ASSERT_TRUE(output_bias.grad().defined());
  EXPECT_GT(output_bias.grad().abs().item<double>(), 0.0);
}

}  // namespace
}  // namespace gradfit::model
