#include "train/lbfgs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/error.h"
#include "test_util.h"

namespace gradfit::train {
namespace {

// The 3-D Rosenbrock function at the flat parameters, its gradient by autograd: the operations of
// lbfgs_reference.py's, made in Python's order (left to right: the order in which autograd sums a leaf's gradient
// follows it, and C++ leaves the order of an expression's operands open), so that both get the same bits.
Lbfgs::Evaluation rosenbrock(const torch::Tensor& x) {
  const auto leaf = x.detach().clone().requires_grad_(true);
  const auto head = leaf.narrow(0, 0, 2), tail = leaf.narrow(0, 1, 2);
  const auto valley = torch::mul(torch::sub(tail, torch::mul(head, head)).pow(2), 100);
  const auto slope = torch::rsub(head, 1).pow(2);
  const auto loss = torch::add(valley, slope).sum();
  loss.backward();
  return {loss.item<double>(), leaf.grad().clone(), torch::Tensor()};
}

// What torch.optim.LBFGS does on the same function (tests/train/lbfgs_reference.py: lr=1, history_size=3,
// max_iter=1, strong Wolfe, from x = (-1.5, 2, 0.5), float64, 30 steps), computed now by the installed PyTorch, on
// this CPU: the losses step() returned, the final x, state['func_evals'], and how far one rounding moves them (the
// largest change over starts one float away, per step; and of the final x).
struct Reference {
  std::vector<double> losses, final_x, loss_spread;
  int64_t function_evaluations = 0;
  double x_spread = 0;
};

std::vector<double> numbers_of(const std::string& line) {
  std::istringstream in(line);
  std::vector<double> numbers;
  for (std::string word; in >> word;) numbers.push_back(std::strtod(word.c_str(), nullptr));
  return numbers;
}

const Reference& pytorch_reference() {
  static const Reference reference = [] {
    const std::string command =
        std::string(GRADFIT_PYTHON) + " " + GRADFIT_SOURCE_DIR + "/tests/train/lbfgs_reference.py --steps 30";
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) throw std::runtime_error("cannot run " + command);
    std::string text;
    char buffer[4096];
    while (std::fgets(buffer, sizeof buffer, pipe)) text += buffer;
    if (pclose(pipe) != 0) throw std::runtime_error(command + " failed");
    std::istringstream lines(text);
    std::string line[5];
    for (auto& l : line) std::getline(lines, l);
    Reference r{numbers_of(line[0]), numbers_of(line[1]), numbers_of(line[3]), 0, 0};
    r.function_evaluations = std::stoll(line[2]);
    r.x_spread = std::strtod(line[4].c_str(), nullptr);
    return r;
  }();
  return reference;
}

// The port's losses, final x and evaluations against PyTorch's. The rounding argument: the port makes PyTorch's
// tensor operations in PyTorch's order, and its scalar arithmetic (the line search's interpolation) in C++ doubles
// where PyTorch uses 0-dim float64 tensors. The two can round apart there only, a few roundings per line search
// (measured on an AVX-512 CPU: equal to the last bit with LibTorch's own kernels; with ATEN_CPU_CAPABILITY=default
// the first difference at step 23, 2e-15 relative). L-BFGS on Rosenbrock amplifies a rounding by up to ~1e7 in 30
// steps, so a fixed tolerance cannot hold on every CPU: each rounding moves the trajectory as much as a start one
// float away does, which the reference measures at test time. Step k is compared at 16 times the largest relative
// such move up to step k (plus 4 roundings): tight where the trajectory is (~2e-14 relative at the first steps),
// loose where it amplifies (~5e-8 at the worst step); a wrong formula or branch moves it by far more.
void expect_pytorchs_steps(const std::vector<double>& losses, const torch::Tensor& x, int64_t function_evaluations) {
  const Reference& reference = pytorch_reference();
  ASSERT_EQ(losses.size(), reference.losses.size());
  ASSERT_EQ(reference.loss_spread.size(), reference.losses.size());
  ASSERT_EQ(reference.final_x.size(), 3u);
  constexpr double kRounding = 0x1p-52, kRoundingsPerStep = 16;
  double grown = 0;  // the largest relative move of one rounding so far
  for (size_t i = 0; i < losses.size(); ++i) {
    grown = std::max(grown, reference.loss_spread[i] / reference.losses[i]);
    const double tolerance = (kRoundingsPerStep * grown + 4 * kRounding) * reference.losses[i];
    EXPECT_NEAR(losses[i], reference.losses[i], tolerance) << "step " << i;
  }
  const double x_tolerance = kRoundingsPerStep * reference.x_spread + 4 * kRounding;
  for (int64_t j = 0; j < 3; ++j) EXPECT_NEAR(x[j].item<double>(), reference.final_x[j], x_tolerance) << "x" << j;
  EXPECT_EQ(function_evaluations, reference.function_evaluations);
}

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
  expect_pytorchs_steps(losses, x, lbfgs.function_evaluations());
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
  expect_pytorchs_steps(losses, x, lbfgs.function_evaluations());           // PyTorch's count, every start in it
  EXPECT_EQ(closure_calls, pytorch_reference().function_evaluations - 29);  // the 29 restarts were not evaluated
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
