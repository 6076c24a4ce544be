#include "train/optimizer.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_util.h"

namespace gradfit::train {
namespace {

// The flat optimizer takes exactly LibTorch's steps: same parameters after many steps on changing gradients.
void expect_same_as_libtorch(const config::OptimizerSpec& spec) {
  torch::manual_seed(5);
  std::vector<torch::Tensor> ours{torch::randn({4, 3}, torch::kFloat64), torch::randn({4}, torch::kFloat64)};
  std::vector<torch::Tensor> theirs;
  for (auto& p : ours) {
    p.requires_grad_(true);
    theirs.push_back(p.detach().clone().requires_grad_(true));
  }
  const auto flat = flatten_parameters(ours);
  FlatOptimizer optimizer(spec, flat);
  std::unique_ptr<torch::optim::Optimizer> reference;
  if (spec.name == config::Optimizer::adam)
    reference = std::make_unique<torch::optim::Adam>(theirs, torch::optim::AdamOptions(spec.lr));
  else
    reference = std::make_unique<torch::optim::SGD>(theirs, torch::optim::SGDOptions(spec.lr).momentum(spec.momentum));
  for (int step = 0; step < 50; ++step) {
    const auto grad = torch::randn({flat.numel()}, torch::kFloat64);
    optimizer.step(grad);
    theirs[0].mutable_grad() = grad.narrow(0, 0, 12).view({4, 3}).clone();
    theirs[1].mutable_grad() = grad.narrow(0, 12, 4).clone();
    reference->step();
  }
  for (size_t i = 0; i < ours.size(); ++i) {
    const double rel = ((ours[i] - theirs[i]).norm() / theirs[i].norm()).item<double>();
    EXPECT_LT(rel, 1e-14) << "parameter " << i;
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

}  // namespace
}  // namespace gradfit::train
