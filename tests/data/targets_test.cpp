#include "data/targets.h"

#include <gtest/gtest.h>

namespace gradfit::data {
namespace {

using config::DataSpec;
using config::Sampling;
using config::Target;

DataSpec grid_quadratic() {
  DataSpec s;
  s.target = Target::quadratic;
  s.P = {20.1892, -26.6218, -26.6218, 38.0375};
  s.dim = 2;
  return s;
}

torch::Tensor autograd_gradient(const DataSpec& spec, const torch::Tensor& points) {
  auto x = points.clone().requires_grad_(true);
  auto v = potential(spec, x);
  return torch::autograd::grad({v}, {x}, {torch::ones_like(v)})[0];
}

TEST(Targets, GridIsRowMajorOverTheBox) {
  const DataSpec s = grid_quadratic();
  ASSERT_EQ(config::analytic_sample_count(s), 100);
  const auto x = sample_points(s, 0, 100);
  EXPECT_DOUBLE_EQ(x[0][0].item<double>(), -3.0);
  EXPECT_DOUBLE_EQ(x[0][1].item<double>(), -3.0);
  EXPECT_NEAR(x[1][1].item<double>(), -3.0 + 6.0 / 9.0, 1e-15);  // last axis fastest
  EXPECT_DOUBLE_EQ(x[1][0].item<double>(), -3.0);
  EXPECT_DOUBLE_EQ(x[99][0].item<double>(), 3.0);
  EXPECT_DOUBLE_EQ(x[99][1].item<double>(), 3.0);
}

TEST(Targets, QuadraticGradientIsTwoPx) {
  const DataSpec s = grid_quadratic();
  const auto x = sample_points(s, 0, 100);
  const auto P = torch::tensor(s.P, torch::kFloat64).view({2, 2});
  const auto expected = x.matmul(P + P.t());
  EXPECT_TRUE(torch::allclose(autograd_gradient(s, x), expected, 1e-12, 1e-12));
  // The user's numbers: mean of squared gradients over the grid is ~24000 (their first loss).
  EXPECT_NEAR(expected.pow(2).mean().item<double>(), 24000.0, 100.0);
}

TEST(Targets, RosenbrockMatchesItsClosedFormGradient) {
  DataSpec s;
  s.target = Target::rosenbrock;
  s.dim = 3;
  const auto x = torch::tensor({{0.5, -1.0, 2.0}}, torch::kFloat64);
  const double a = 0.5, b = -1.0, c = 2.0;
  const double g0 = -400 * a * (b - a * a) - 2 * (1 - a);
  const double g1 = 200 * (b - a * a) - 400 * b * (c - b * b) - 2 * (1 - b);
  const double g2 = 200 * (c - b * b);
  const auto g = autograd_gradient(s, x);
  EXPECT_NEAR(g[0][0].item<double>(), g0, 1e-12);
  EXPECT_NEAR(g[0][1].item<double>(), g1, 1e-12);
  EXPECT_NEAR(g[0][2].item<double>(), g2, 1e-12);
  EXPECT_NEAR(potential(s, x).item<double>(),
              100 * std::pow(b - a * a, 2) + std::pow(1 - a, 2) + 100 * std::pow(c - b * b, 2) + std::pow(1 - b, 2),
              1e-12);
}

TEST(Targets, GaussianWellsGradientMatchesFiniteDifferences) {
  DataSpec s;
  s.target = Target::gaussian_wells;
  s.dim = 4;
  s.sampling = Sampling::uniform;
  s.samples = 5;
  const auto x = sample_points(s, 0, 5);
  const auto g = autograd_gradient(s, x);
  const double h = 1e-6;
  for (int64_t j = 0; j < s.dim; ++j) {
    auto step = torch::zeros_like(x);
    step.select(1, j).fill_(h);
    const auto fd = (potential(s, x + step) - potential(s, x - step)) / (2 * h);
    EXPECT_TRUE(torch::allclose(g.select(1, j), fd, 1e-7, 1e-9)) << "axis " << j;
  }
  EXPECT_GT(g.abs().max().item<double>(), 1e-6);  // the wells are not flat at the samples
}

TEST(Targets, RandomRowsDependOnlyOnSeedAndRowIndex) {
  for (const Sampling sampling : {Sampling::uniform, Sampling::normal}) {
    DataSpec s;
    s.target = Target::rosenbrock;
    s.dim = 3;
    s.sampling = sampling;
    s.samples = 10;
    s.seed = 7;
    const auto all = sample_points(s, 0, 10);
    EXPECT_TRUE(torch::equal(sample_points(s, 4, 3), all.narrow(0, 4, 3)));
    s.seed = 8;
    EXPECT_FALSE(torch::equal(sample_points(s, 0, 10), all));
  }
}

TEST(Targets, SampleMomentsLookRight) {
  DataSpec s;
  s.target = Target::rosenbrock;
  s.dim = 2;
  s.samples = 20000;
  s.sampling = Sampling::normal;
  s.stddev = 2.0;
  const auto normal = sample_points(s, 0, s.samples);
  EXPECT_NEAR(normal.mean().item<double>(), 0.0, 0.05);
  EXPECT_NEAR(normal.std().item<double>(), 2.0, 0.05);
  s.sampling = Sampling::uniform;
  const auto uniform = sample_points(s, 0, s.samples);
  EXPECT_GE(uniform.min().item<double>(), -3.0);
  EXPECT_LE(uniform.max().item<double>(), 3.0);
  EXPECT_NEAR(uniform.mean().item<double>(), 0.0, 0.05);
}

}  // namespace
}  // namespace gradfit::data
