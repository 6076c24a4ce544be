#include "train/standardization_fit.h"

#include <gtest/gtest.h>

#include <cmath>

#include "train/batches.h"

namespace gradfit::train {
namespace {

const parallel::Comm& self() {
  static const parallel::Comm comm(MPI_COMM_SELF);
  return comm;
}

// A shard of all N rows of x (N×n), grad and value, on one rank.
data::Dataset dataset_of(const torch::Tensor& x, const torch::Tensor& grad, const torch::Tensor& value) {
  data::Dataset d;
  d.x = x.clone();
  d.grad_samples = grad.clone();
  d.values = value.clone();
  d.total_rows = x.size(0);
  d.dim = x.size(1);
  d.shard = parallel::shard_of(d.total_rows, 0, 1);
  return d;
}

// μ, σ (population), s and v0 as defined; a constant column gets σ = 1 (only centred), and the transformed data
// have mean 0, scale 1 and S̃ of unit RMS.
TEST(Standardize, FitsMomentsAndGuardsAConstantColumn) {
  const auto x = torch::tensor({{0.0, 5.0}, {10.0, 5.0}, {20.0, 5.0}, {30.0, 5.0}}, torch::kFloat64);
  const auto grad = torch::tensor({{1e4, 2.0}, {-1e4, 2.0}, {3e4, -2.0}, {0.0, 2.0}}, torch::kFloat64);
  const auto value = torch::tensor({1.0, 2.0, 3.0, 6.0}, torch::kFloat64);
  auto data = dataset_of(x, grad, value);
  const auto st = fit_standardization(data, config::TrainSpec{}, self());
  ASSERT_EQ(st.mean.size(), 2u);
  EXPECT_DOUBLE_EQ(st.mean[0], 15.0);
  EXPECT_DOUBLE_EQ(st.mean[1], 5.0);
  EXPECT_DOUBLE_EQ(st.scale[0], std::sqrt(125.0));
  EXPECT_EQ(st.scale[1], 1.0);  // constant: σ = 0 becomes 1
  EXPECT_DOUBLE_EQ(st.value_offset, 3.0);
  const double s2 = (125.0 * (1e8 + 1e8 + 9e8 + 0) + 1.0 * 16.0) / 8.0;
  EXPECT_DOUBLE_EQ(st.value_scale, std::sqrt(s2));
  standardize_dataset(data, st);
  EXPECT_LT(data.x.mean(0).abs().max().item<double>(), 1e-15);
  EXPECT_NEAR(data.x.select(1, 0).square().mean().item<double>(), 1.0, 1e-15);
  EXPECT_EQ(data.x.select(1, 1).abs().max().item<double>(), 0.0);
  EXPECT_NEAR(data.grad_samples.square().mean().item<double>(), 1.0, 1e-15);
  EXPECT_TRUE(data.standardization == st);
}

// Rows held out for validation do not count: the fit equals that of the training rows alone.
TEST(Standardize, UsesTheTrainingRowsOnly) {
  const auto x = torch::rand({200, 3}, torch::kFloat64) * 1000, grad = torch::randn({200, 3}, torch::kFloat64) * 1e4;
  const auto value = torch::randn({200}, torch::kFloat64);
  config::TrainSpec spec;
  spec.val_fraction = 0.3;
  spec.seed = 5;
  const auto held_out = holdout_rows(200, spec.val_fraction, spec.seed);
  std::vector<int64_t> rows;
  for (int64_t i = 0; i < 200; ++i)
    if (!held_out[i]) rows.push_back(i);
  ASSERT_GT(rows.size(), 100u);
  ASSERT_LT(rows.size(), 180u);
  const auto index = torch::tensor(rows, torch::kInt64);
  const auto all = fit_standardization(dataset_of(x, grad, value), spec, self());
  const auto train = fit_standardization(
      dataset_of(x.index_select(0, index), grad.index_select(0, index), value.index_select(0, index)),
      config::TrainSpec{}, self());
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(all.mean[i], train.mean[i], 1e-12 * std::abs(train.mean[i]));
    EXPECT_NEAR(all.scale[i], train.scale[i], 1e-12 * train.scale[i]);
  }
  EXPECT_NEAR(all.value_scale, train.value_scale, 1e-12 * train.value_scale);
  EXPECT_NEAR(all.value_offset, train.value_offset, 1e-12 * std::abs(train.value_offset));
}

}  // namespace
}  // namespace gradfit::train
