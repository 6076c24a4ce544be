// GPU checks, run where LibTorch sees a CUDA device and skipped elsewhere (a CPU-only LibTorch, or no GPU): in
// float64 the GPU follows the CPU's training trajectory up to rounding, and its double-backward weight gradient
// equals central finite differences of the loss.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "dist/mpi_env.h"
#include "model/loss.h"
#include "model/mlp.h"
#include "train/trainer.h"

namespace gradfit {
namespace {

#define SKIP_WITHOUT_A_GPU() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (CPU-only LibTorch or no GPU)"

double relative_difference(double a, double b) {
  return std::abs(a - b) / std::max(std::abs(b), 1e-300);
}

// A nonlinear 3-D target and a smooth net: every weight has a real gradient, so no rounding noise sits where Adam,
// which normalises each gradient, would blow it up.
config::RunSpec float64_run(int64_t batch_size) {
  config::RunSpec run;
  run.data.target = config::Target::gaussian_wells;
  run.data.dim = 3;
  run.data.sampling = config::Sampling::uniform;
  run.data.samples = 1000;
  run.data.well_width = 2.0;
  run.data.seed = 4;
  run.model.widths = {16, 16};
  run.model.activation = config::Activation::softplus;
  run.model.dtype = config::DType::float64;
  run.optimizer.lr = 3e-3;
  run.train.epochs = 20;
  run.train.batch_size = batch_size;
  run.train.seed = 5;
  return run;
}

// The same run on the CPU and on cuda:0: loss histories and final weights agree to 1e-9 relative.
void expect_gpu_matches_cpu(const config::RunSpec& run) {
  const dist::Comm self(MPI_COMM_SELF);
  const torch::Device gpu(torch::kCUDA, 0);
  const auto cpu_data = data::load_dataset(run.data, torch::kFloat64, self, torch::kCPU);
  const auto gpu_data = data::load_dataset(run.data, torch::kFloat64, self, gpu);
  ASSERT_TRUE(gpu_data.x.is_cuda());
  const train::TrainResult on_cpu = train::train(run, cpu_data, self);
  const train::TrainResult on_gpu = train::train(run, gpu_data, self);
  ASSERT_EQ(on_cpu.status, "done");
  ASSERT_EQ(on_gpu.status, "done");
  ASSERT_EQ(on_cpu.history.size(), static_cast<size_t>(run.train.epochs));
  ASSERT_EQ(on_gpu.history.size(), on_cpu.history.size());

  double worst_loss = 0, worst_weight = 0;
  for (size_t e = 0; e < on_cpu.history.size(); ++e) {
    const auto& g = on_gpu.history[e];
    const auto& c = on_cpu.history[e];
    worst_loss = std::max({worst_loss, relative_difference(g.train_loss, c.train_loss),
                           relative_difference(g.rel_grad_error, c.rel_grad_error)});
  }
  ASSERT_EQ(on_gpu.parameters.size(), on_cpu.parameters.size());
  for (size_t p = 0; p < on_cpu.parameters.size(); ++p) {
    const auto& [name, b] = on_cpu.parameters[p];
    const auto a = on_gpu.parameters[p].second.to(torch::kCPU);
    EXPECT_EQ(on_gpu.parameters[p].first, name);
    EXPECT_EQ(a.scalar_type(), torch::kFloat64) << name;
    ASSERT_EQ(a.sizes(), b.sizes()) << name;
    worst_weight = std::max(worst_weight, ((a - b).norm() / b.norm().clamp_min(1e-300)).item<double>());
  }
  std::printf("[ batch=%lld epochs=%lld ] GPU vs CPU, worst relative difference: loss %.3e, weights %.3e\n",
              static_cast<long long>(run.train.batch_size), static_cast<long long>(run.train.epochs), worst_loss,
              worst_weight);
  EXPECT_LT(worst_loss, 1e-9);
  EXPECT_LT(worst_weight, 1e-9);
  EXPECT_LT(on_cpu.history.back().train_loss, on_cpu.history.front().train_loss);  // it did train
}

TEST(GpuTraining, FullBatchMatchesTheCpuInFloat64) {
  SKIP_WITHOUT_A_GPU();
  expect_gpu_matches_cpu(float64_run(/*batch_size=*/0));
}

TEST(GpuTraining, MiniBatchMatchesTheCpuInFloat64) {
  SKIP_WITHOUT_A_GPU();
  expect_gpu_matches_cpu(float64_run(/*batch_size=*/128));
}

class GpuLossGradient : public ::testing::TestWithParam<config::Activation> {};

// The weight gradient that double backward computes on the GPU equals central finite differences of the GPU loss,
// and the CPU's gradient of the same model on the same data.
TEST_P(GpuLossGradient, MatchesCentralFiniteDifferencesInFloat64) {
  SKIP_WITHOUT_A_GPU();
  const torch::Device gpu(torch::kCUDA, 0);
  torch::manual_seed(123);
  const auto x_cpu = torch::randn({6, 3}, torch::kFloat64);
  const auto s_cpu = torch::randn({6, 3}, torch::kFloat64);
  const auto v_cpu = torch::randn({6}, torch::kFloat64);
  const auto x = x_cpu.to(gpu), s = s_cpu.to(gpu), v = v_cpu.to(gpu);
  config::ModelSpec spec;
  spec.widths = {5, 4};
  spec.activation = GetParam();
  spec.dtype = config::DType::float64;
  model::Mlp on_gpu = model::make_mlp(spec, /*input_dim=*/3, /*seed=*/11);
  model::Mlp on_cpu = model::make_mlp(spec, 3, 11);
  on_gpu->to(gpu);
  const double value_weight = 0.3;  // the value term too, so that every parameter is checked
  const auto loss_of = [&] {
    return model::gradient_matching_loss(on_gpu, x, s, v, value_weight, 6).loss.item<double>();
  };

  model::gradient_matching_loss(on_gpu, x, s, v, value_weight, 6).loss.backward();
  model::gradient_matching_loss(on_cpu, x_cpu, s_cpu, v_cpu, value_weight, 6).loss.backward();
  std::vector<double> analytic, numeric, cpu_analytic;
  const double h = 1e-6;
  const auto gpu_params = on_gpu->parameters();
  const auto cpu_params = on_cpu->parameters();
  ASSERT_EQ(gpu_params.size(), cpu_params.size());
  for (size_t k = 0; k < gpu_params.size(); ++k) {
    const auto& param = gpu_params[k];
    ASSERT_TRUE(param.is_cuda());
    ASSERT_TRUE(param.grad().defined());
    ASSERT_TRUE(cpu_params[k].grad().defined());
    const auto flat_grad = param.grad().reshape(-1).cpu();
    const auto flat_cpu_grad = cpu_params[k].grad().reshape(-1);
    auto flat = param.data().view(-1);  // perturb the weights in place, outside autograd
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double saved = flat[i].item<double>();
      flat[i] = saved + h;
      const double up = loss_of();
      flat[i] = saved - h;
      const double down = loss_of();
      flat[i] = saved;
      numeric.push_back((up - down) / (2 * h));
      analytic.push_back(flat_grad[i].item<double>());
      cpu_analytic.push_back(flat_cpu_grad[i].item<double>());
    }
  }
  const auto a = torch::tensor(analytic, torch::kFloat64);
  const auto n = torch::tensor(numeric, torch::kFloat64);
  const auto c = torch::tensor(cpu_analytic, torch::kFloat64);
  const double rel = ((a - n).norm() / n.norm()).item<double>();
  const double rel_cpu = ((a - c).norm() / c.norm()).item<double>();
  std::printf("[ %s ] %lld weights on the GPU, relative error vs central differences %.3e, vs the CPU %.3e\n",
              config::to_string(GetParam()), static_cast<long long>(a.numel()), rel, rel_cpu);
  EXPECT_LT(rel, 1e-6) << "activation " << config::to_string(GetParam());
  EXPECT_LT(rel_cpu, 1e-12) << "activation " << config::to_string(GetParam());
  EXPECT_GT(n.norm().item<double>(), 1e-3);  // a real gradient, not zeros on both sides
}

INSTANTIATE_TEST_SUITE_P(AllActivations, GpuLossGradient,
                         ::testing::Values(config::Activation::relu, config::Activation::tanh,
                                           config::Activation::softplus, config::Activation::silu,
                                           config::Activation::gelu),
                         [](const auto& info) { return std::string(config::to_string(info.param)); });

}  // namespace
}  // namespace gradfit
