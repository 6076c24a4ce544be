#include "train/lbfgs.h"

#include <gtest/gtest.h>

#include <vector>

#include "common/error.h"
#include "test_util.h"

namespace gradfit::train {
namespace {

// The 3-D Rosenbrock function at the flat parameters, its gradient by autograd.
Lbfgs::Evaluation rosenbrock(const torch::Tensor& x) {
  const auto leaf = x.detach().clone().requires_grad_(true);
  const auto head = leaf.narrow(0, 0, 2), tail = leaf.narrow(0, 1, 2);
  const auto loss = (100 * (tail - head * head).pow(2) + (1 - head).pow(2)).sum();
  loss.backward();
  return {loss.item<double>(), leaf.grad().clone(), torch::Tensor()};
}

// torch.optim.LBFGS([x], lr=1, history_size=3, max_iter=1, line_search_fn="strong_wolfe") from x = (-1.5, 2, 0.5),
// stepped 30 times with a closure of the function above (PyTorch 1.13, float64): the losses step() returned, the
// final x and state['func_evals'].
const std::vector<double> kPyTorchLosses{1238.5,
                                         154.49636327232326,
                                         58.86303088402432,
                                         10.252307928649781,
                                         4.454795780369248,
                                         3.9456413290195007,
                                         3.9039122378962112,
                                         3.896007068357487,
                                         3.890467519161564,
                                         3.877460542696742,
                                         3.8011191910041306,
                                         3.743996318918245,
                                         3.564789030050594,
                                         3.4192244587544907,
                                         3.1658827510210044,
                                         3.1031424670486434,
                                         2.9947190124515792,
                                         2.9254255838089076,
                                         2.8317803832364272,
                                         2.49643306139945,
                                         2.409503645424021,
                                         2.313365452281129,
                                         2.0659270797729157,
                                         1.6443713120412093,
                                         1.486685351063029,
                                         1.305282254442489,
                                         0.9966675003038998,
                                         0.9198457553054472,
                                         0.7018477106347001,
                                         0.6628504722535504};
const std::vector<double> kPyTorchFinalX{0.6115451093088843, 0.35566214615195924, 0.12173862396111537};
constexpr int64_t kPyTorchFunctionEvaluations = 67;

// Steps `lbfgs` on the Rosenbrock function `steps` times, returning the losses at each iteration's start.
std::vector<double> run(Lbfgs& lbfgs, const torch::Tensor& x, int steps) {
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) {
    const auto start = rosenbrock(x);
    losses.push_back(start.loss);
    lbfgs.step(start, [&] { return rosenbrock(x); });
  }
  return losses;
}

TEST(Lbfgs, TakesPyTorchsStepsWithStrongWolfe) {
  auto x = torch::tensor({-1.5, 2.0, 0.5}, torch::kFloat64);
  Lbfgs lbfgs(x, /*history_size=*/3, /*lr=*/1.0);
  const auto losses = run(lbfgs, x, 30);
  for (size_t i = 0; i < losses.size(); ++i)
    EXPECT_NEAR(losses[i], kPyTorchLosses[i], 1e-12 * kPyTorchLosses[i]) << "step " << i;
  for (int64_t j = 0; j < 3; ++j) EXPECT_NEAR(x[j].item<double>(), kPyTorchFinalX[j], 1e-12) << "x" << j;
  EXPECT_EQ(lbfgs.function_evaluations(), kPyTorchFunctionEvaluations);
}

// What step() returns is the evaluation at the parameters it leaves: a new evaluation there gives the same bits, so
// starting each step from the last one's return (as the trainer does) takes PyTorch's steps, evaluating once less.
TEST(Lbfgs, StepReturnsTheEvaluationWhereItLeavesTheParameters) {
  auto x = torch::tensor({-1.5, 2.0, 0.5}, torch::kFloat64);
  Lbfgs lbfgs(x, 3, 1.0);
  int64_t closure_calls = 0;
  const auto counted = [&] { return ++closure_calls, rosenbrock(x); };
  Lbfgs::Evaluation start = counted();
  std::vector<double> losses;
  for (int i = 0; i < 30; ++i) {
    losses.push_back(start.loss);
    start = lbfgs.step(start, counted);
    const Lbfgs::Evaluation again = rosenbrock(x);
    ASSERT_EQ(start.loss, again.loss) << "step " << i;
    ASSERT_TRUE(torch::equal(start.grad, again.grad)) << "step " << i;
  }
  for (size_t i = 0; i < losses.size(); ++i)
    EXPECT_NEAR(losses[i], kPyTorchLosses[i], 1e-12 * kPyTorchLosses[i]) << "step " << i;
  for (int64_t j = 0; j < 3; ++j) EXPECT_NEAR(x[j].item<double>(), kPyTorchFinalX[j], 1e-12) << "x" << j;
  EXPECT_EQ(lbfgs.function_evaluations(), kPyTorchFunctionEvaluations);  // PyTorch's count, every start in it
  EXPECT_EQ(closure_calls, kPyTorchFunctionEvaluations - 29);            // the 29 restarts were not evaluated
}

TEST(Lbfgs, StateRoundTripsBitForBit) {
  auto x = torch::tensor({-1.5, 2.0, 0.5}, torch::kFloat64);
  Lbfgs straight(x, 3, 1.0);
  run(straight, x, 12);
  auto y = x.clone();
  Lbfgs resumed(y, 3, 1.0);
  resumed.load(straight.save(), torch::kCPU);  // the history is full (3 pairs) and shifts from here
  const auto a = run(straight, x, 15), b = run(resumed, y, 15);
  EXPECT_EQ(a, b);
  EXPECT_TRUE(torch::equal(x, y));
  EXPECT_EQ(straight.function_evaluations(), resumed.function_evaluations());
  Lbfgs fresh(torch::zeros({3}, torch::kFloat64), 3, 1.0);
  fresh.load(Lbfgs(torch::zeros({3}, torch::kFloat64), 3, 1.0).save(), torch::kCPU);  // before any step
  Lbfgs wrong_size(torch::zeros({4}, torch::kFloat64), 3, 1.0);
  EXPECT_THROW_MATCHING(wrong_size.load(straight.save(), torch::kCPU), Error, "does not match the model's parameter");
  EXPECT_THROW_MATCHING(wrong_size.load("not an archive", torch::kCPU), Error, "not an L-BFGS state");
}

TEST(Lbfgs, StopsAtAStationaryPoint) {
  auto x = torch::tensor({1.0, 1.0, 1.0}, torch::kFloat64);  // the minimum: zero gradient
  Lbfgs lbfgs(x, 3, 1.0);
  EXPECT_EQ(run(lbfgs, x, 3), std::vector<double>(3, 0.0));
  EXPECT_TRUE(torch::equal(x, torch::ones({3}, torch::kFloat64)));
  EXPECT_EQ(lbfgs.function_evaluations(), 3);  // one per step: PyTorch returns before the line search
  const Lbfgs::Evaluation start = rosenbrock(x);
  EXPECT_EQ(lbfgs.step(start, [&] { return rosenbrock(x); }).grad.data_ptr(), start.grad.data_ptr());  // no step
}

}  // namespace
}  // namespace gradfit::train
