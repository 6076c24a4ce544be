// GPU checks, run where LibTorch sees a CUDA device and skipped elsewhere (a CPU-only LibTorch, or no GPU): in
// float64 the GPU follows the CPU's training trajectory up to rounding (a run alone, and the runs of an ensemble),
// and its double-backward weight gradient equals central finite differences of the loss.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "model/loss.h"
#include "model/mlp.h"
#include "parallel/comm.h"
#include "test_util.h"
#include "train/trainer.h"

namespace gradfit {
namespace {

using testing::central_differences;
using testing::float64_wells_run;
using testing::relative_difference;

#define SKIP_WITHOUT_A_GPU() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (CPU-only LibTorch or no GPU)"

// The same run on the CPU and on cuda:0: loss histories and final weights agree to 1e-9 relative.
void expect_gpu_matches_cpu(const config::RunSpec& run) {
  const parallel::Comm self(MPI_COMM_SELF);
  const torch::Device gpu(torch::kCUDA, 0);
  const auto cpu_data = data::load_dataset(run.data, torch::kFloat64, self, torch::kCPU);
  const auto gpu_data = data::load_dataset(run.data, torch::kFloat64, self, gpu);
  ASSERT_TRUE(gpu_data.x.is_cuda());
  const records::TrainResult on_cpu = train::train(run, cpu_data, self);
  const records::TrainResult on_gpu = train::train(run, gpu_data, self);
  ASSERT_EQ(on_cpu.status, records::RunStatus::done);
  ASSERT_EQ(on_gpu.status, records::RunStatus::done);
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
  expect_gpu_matches_cpu(float64_wells_run(/*samples=*/1000, /*batch_size=*/0));
}

TEST(GpuTraining, MiniBatchMatchesTheCpuInFloat64) {
  SKIP_WITHOUT_A_GPU();
  expect_gpu_matches_cpu(float64_wells_run(/*samples=*/1000, /*batch_size=*/128));
}

// An ensemble on the GPU (products batched over its runs): each run's history and final weights agree with the
// same run trained alone on the CPU to 1e-9 in float64, mini-batches included.
TEST(GpuTraining, EnsembleMatchesItsRunsAloneOnTheCpu) {
  SKIP_WITHOUT_A_GPU();
  const parallel::Comm self(MPI_COMM_SELF);
  std::vector<config::RunSpec> runs;
  for (const double lr : {3e-3, 1e-3, 1e-2}) {
    runs.push_back(float64_wells_run(/*samples=*/1000, /*batch_size=*/128));
    runs.back().optimizer.lr = lr;
  }
  const auto cpu_data = data::load_dataset(runs[0].data, torch::kFloat64, self, torch::kCPU);
  const auto gpu_data = data::load_dataset(runs[0].data, torch::kFloat64, self, torch::Device(torch::kCUDA, 0));
  const auto together = train::train_ensemble(runs, gpu_data, self);
  ASSERT_EQ(together.size(), runs.size());
  double worst = 0;
  for (size_t r = 0; r < runs.size(); ++r) {
    const auto alone = train::train(runs[r], cpu_data, self);
    ASSERT_EQ(together[r].status, alone.status);
    ASSERT_EQ(together[r].history.size(), alone.history.size());
    EXPECT_EQ(together[r].ensemble, 3);
    for (size_t e = 0; e < alone.history.size(); ++e)
      worst = std::max(worst, relative_difference(together[r].history[e].train_loss, alone.history[e].train_loss));
    for (size_t p = 0; p < alone.parameters.size(); ++p) {
      const auto& b = alone.parameters[p].second;
      const auto a = together[r].parameters[p].second.to(torch::kCPU);
      worst = std::max(worst, ((a - b).norm() / b.norm().clamp_min(1e-300)).item<double>());
    }
  }
  std::printf("[ ensemble of 3 on the GPU ] worst relative difference from each run alone on the CPU: %.3e\n", worst);
  EXPECT_LT(worst, 1e-9);
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
  const auto gpu_params = on_gpu->parameters();
  const auto cpu_params = on_cpu->parameters();
  ASSERT_EQ(gpu_params.size(), cpu_params.size());
  std::vector<torch::Tensor> gpu_grads, cpu_grads;
  for (size_t k = 0; k < gpu_params.size(); ++k) {
    ASSERT_TRUE(gpu_params[k].is_cuda());
    ASSERT_TRUE(gpu_params[k].grad().defined());
    ASSERT_TRUE(cpu_params[k].grad().defined());
    gpu_grads.push_back(gpu_params[k].grad().reshape(-1).cpu());
    cpu_grads.push_back(cpu_params[k].grad().reshape(-1));
  }
  const auto a = torch::cat(gpu_grads);
  const auto c = torch::cat(cpu_grads);
  const auto n = torch::tensor(central_differences(gpu_params, loss_of), torch::kFloat64);
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
