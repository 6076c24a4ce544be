#include "train/optimizer.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_util.h"

namespace gradfit::train {
namespace {

// The flat optimizer takes exactly LibTorch's steps: same parameters after many steps on changing gradients. With
// `bias_without_gradient`, the last parameter is one element that never gets a gradient (the output bias under a
// pure gradient loss): LibTorch's optimizers skip it (its .grad undefined), ours gets zeros there and is told so.
void expect_same_as_libtorch(const config::OptimizerSpec& spec, bool bias_without_gradient = false) {
  torch::manual_seed(5);
  const int64_t bias_size = bias_without_gradient ? 1 : 4;
  std::vector<torch::Tensor> ours{torch::randn({4, 3}, torch::kFloat64), torch::randn({bias_size}, torch::kFloat64)};
  const torch::Tensor initial_bias = ours[1].clone();
  std::vector<torch::Tensor> theirs;
  for (auto& p : ours) {
    p.requires_grad_(true);
    theirs.push_back(p.detach().clone().requires_grad_(true));
  }
  const auto flat = flatten_parameters(ours);
  FlatOptimizer optimizer(spec, flat, bias_without_gradient ? 1 : 0);
  std::unique_ptr<torch::optim::Optimizer> reference;
  if (spec.name == config::Optimizer::adam)
    reference = std::make_unique<torch::optim::Adam>(theirs, torch::optim::AdamOptions(spec.lr));
  else if (spec.name == config::Optimizer::adamw)
    reference = std::make_unique<torch::optim::AdamW>(
        theirs, torch::optim::AdamWOptions(spec.lr).weight_decay(spec.weight_decay));
  else
    reference = std::make_unique<torch::optim::SGD>(theirs, torch::optim::SGDOptions(spec.lr).momentum(spec.momentum));
  for (int step = 0; step < 50; ++step) {
    const auto grad = torch::randn({flat.numel()}, torch::kFloat64) * (step % 2 ? 1.0 : 10.0);
    theirs[0].mutable_grad() = grad.narrow(0, 0, 12).view({4, 3}).clone();
    if (bias_without_gradient) {
      grad.narrow(0, 12, 1).zero_();  // as the trainer's buffer holds it; LibTorch's .grad stays undefined
    } else {
      theirs[1].mutable_grad() = grad.narrow(0, 12, 4).clone();
    }
    optimizer.step(grad);  // clips `grad` in place where max_grad_norm is set
    if (spec.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(theirs, spec.max_grad_norm);
    reference->step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    const double rel = ((ours[i] - theirs[i]).norm() / theirs[i].norm()).item<double>();
    EXPECT_LT(rel, 1e-14) << "parameter " << i;
  }
  if (bias_without_gradient) {
    EXPECT_TRUE(torch::equal(ours[1], initial_bias));  // not decayed, not moved
  }
  // The parameters are views into the flat tensor the optimizer updates.
  EXPECT_EQ(ours[0].data_ptr(), flat.data_ptr());
}

TEST(FlatOptimizer, AdamTakesLibTorchsSteps) {
  config::OptimizerSpec spec;
  spec.lr = 0.05;
  expect_same_as_libtorch(spec);
}

TEST(FlatOptimizer, SgdWithMomentumTakesLibTorchsSteps) {
  config::OptimizerSpec spec;
  spec.name = config::Optimizer::sgd;
  spec.lr = 0.01;
  spec.momentum = 0.9;
  expect_same_as_libtorch(spec);
  spec.momentum = 0;
  expect_same_as_libtorch(spec);
}

// AdamW's decoupled decay, and clipping after it as clip_grad_norm_ (every other step's gradient norm is ~10 times
// the limit, the others' below it), for each optimizer.
TEST(FlatOptimizer, AdamWAndClippingTakeLibTorchsSteps) {
  config::OptimizerSpec spec;
  spec.name = config::Optimizer::adamw;
  spec.lr = 0.05;
  spec.weight_decay = 0.3;
  expect_same_as_libtorch(spec);
  for (const auto name : {config::Optimizer::adam, config::Optimizer::adamw, config::Optimizer::sgd}) {
    spec.name = name;
    spec.momentum = name == config::Optimizer::sgd ? 0.9 : 0.0;
    spec.max_grad_norm = 6;
    expect_same_as_libtorch(spec);
  }
}

// A parameter without a gradient is skipped as LibTorch (and torch.optim) skip it: AdamW does not decay it, and no
// optimizer moves it, clipped or not.
TEST(FlatOptimizer, ParametersWithoutGradientAreSkippedAsLibTorchSkipsThem) {
  config::OptimizerSpec spec;
  spec.lr = 0.05;
  spec.weight_decay = 0.3;
  for (const auto name : {config::Optimizer::adam, config::Optimizer::adamw, config::Optimizer::sgd}) {
    spec.name = name;
    spec.weight_decay = name == config::Optimizer::adamw ? 0.3 : 0.0;
    spec.momentum = name == config::Optimizer::sgd ? 0.9 : 0.0;
    for (const double max_grad_norm : {0.0, 6.0}) {
      spec.max_grad_norm = max_grad_norm;
      expect_same_as_libtorch(spec, /*bias_without_gradient=*/true);
    }
  }
}

// A new rate per row from set_lr (a schedule's) is the rate of the following steps, as a fresh optimizer's.
TEST(FlatOptimizer, SetLrChangesTheRateOfEachRow) {
  for (const auto name : {config::Optimizer::adam, config::Optimizer::adamw, config::Optimizer::sgd}) {
    config::OptimizerSpec spec, fresh;
    spec.name = fresh.name = name;
    spec.weight_decay = fresh.weight_decay = name == config::Optimizer::adamw ? 0.1 : 0.0;
    spec.lr = 0.5;
    fresh.lr = 0.01;
    auto a = torch::ones({2, 10}, torch::kFloat64), b = torch::ones({1, 10}, torch::kFloat64);
    FlatOptimizer changed({spec, fresh}, a), reference(fresh, b);
    changed.set_lr({0.01, 0.01});
    const auto grad = torch::linspace(-1, 1, 10, torch::kFloat64);
    for (int i = 0; i < 3; ++i) {
      changed.step(torch::stack({grad, grad}));
      reference.step(grad.view({1, 10}));
    }
    EXPECT_TRUE(torch::equal(a[0], b[0])) << config::to_string(name);
    EXPECT_TRUE(torch::equal(a[1], b[0])) << config::to_string(name);
  }
}

// Saved state continues exactly; state of another size is refused with a clear error.
TEST(FlatOptimizer, StateRoundTripsAndMismatchIsAClearError) {
  config::OptimizerSpec spec;
  auto a = torch::zeros({10}, torch::kFloat64), b = torch::zeros({10}, torch::kFloat64);
  FlatOptimizer first(spec, a), second(spec, b);
  const auto grad = torch::linspace(-1, 1, 10, torch::kFloat64);
  for (int i = 0; i < 3; ++i) first.step(grad);
  b.copy_(a);
  second.load(first.save(), torch::kCPU);
  first.step(grad);
  second.step(grad);
  EXPECT_TRUE(torch::equal(a, b));
  FlatOptimizer other(spec, torch::zeros({7}, torch::kFloat64));
  EXPECT_THROW_MATCHING(other.load(first.save(), torch::kCPU), Error, "does not match the model's parameter count");
  EXPECT_THROW_MATCHING(other.load("not an archive", torch::kCPU), Error, "not readable");
}

// Rows with their own learning rate and momentum step as one-row optimizers do, and a row's saved state is a
// one-row optimizer's.
TEST(FlatOptimizer, RowsStepAsOptimizersOfTheirOwn) {
  for (const auto name : {config::Optimizer::adam, config::Optimizer::sgd}) {
    std::vector<config::OptimizerSpec> specs(3);
    const double lrs[] = {0.05, 0.003, 0.2}, momenta[] = {0.9, 0.0, 0.5};
    for (int r = 0; r < 3; ++r) specs[r].name = name, specs[r].lr = lrs[r], specs[r].momentum = momenta[r];
    torch::manual_seed(3);
    auto rows = torch::randn({3, 16}, torch::kFloat64);
    std::vector<torch::Tensor> alone;
    std::vector<std::unique_ptr<FlatOptimizer>> alone_optimizers;
    for (int r = 0; r < 3; ++r) {
      alone.push_back(rows[r].clone());
      alone_optimizers.push_back(std::make_unique<FlatOptimizer>(specs[r], alone.back()));
    }
    FlatOptimizer together(specs, rows);
    for (int step = 0; step < 40; ++step) {
      const auto grad = torch::randn({3, 16}, torch::kFloat64);
      together.step(grad);
      for (int r = 0; r < 3; ++r) alone_optimizers[r]->step(grad[r]);
    }
    for (int r = 0; r < 3; ++r) {
      const double rel = ((rows[r] - alone[r]).norm() / alone[r].norm()).item<double>();
      EXPECT_LT(rel, 1e-14) << config::to_string(name) << " row " << r;
      auto copy = torch::zeros({16}, torch::kFloat64);
      FlatOptimizer resumed(specs[r], copy);
      resumed.load(together.save(r), torch::kCPU);
      copy.copy_(rows[r]);
      const auto grad = torch::randn({16}, torch::kFloat64);
      resumed.step(grad);
      alone_optimizers[r]->step(grad);
      EXPECT_LT(((copy - alone[r]).norm() / alone[r].norm()).item<double>(), 1e-14);
    }
  }
  std::vector<config::OptimizerSpec> mixed(2);
  mixed[1].name = config::Optimizer::sgd;
  EXPECT_THROW_MATCHING(FlatOptimizer(mixed, torch::zeros({2, 4})), Error, "share one optimizer");
}

}  // namespace
}  // namespace gradfit::train
