#include "train/standardize.h"

#include <algorithm>
#include <cmath>

#include "model/mlp.h"
#include "train/batches.h"

namespace gradfit::train {
namespace {

constexpr int64_t kBlockRows = int64_t{1} << 13;

// Per local row, 1 for a training row and 0 for a held-out one (float64, on the CPU).
torch::Tensor training_weights(const data::Dataset& data, const config::TrainSpec& spec) {
  auto weights = torch::ones({data.shard.count}, torch::kFloat64);
  const auto held_out = holdout_rows(data.total_rows, spec.val_fraction, spec.seed);
  if (held_out.empty()) return weights;
  auto* w = weights.data_ptr<double>();
  for (int64_t i = 0; i < data.shard.count; ++i) w[i] = held_out[data.shard.begin + i] ? 0.0 : 1.0;
  return weights;
}

// Rows [first, first + rows) of a shard tensor, in float64 on the CPU.
torch::Tensor block_of(const torch::Tensor& t, int64_t first, int64_t rows) {
  return t.narrow(0, first, rows).to(torch::kCPU, torch::kFloat64);
}

// The weighted column sums of `f`(block) over the shard (n values), a block of rows at a time.
template <class F>
std::vector<double> column_sums(const data::Dataset& data, const torch::Tensor& weights, F f) {
  auto sums = torch::zeros({data.dim}, torch::kFloat64);
  for (int64_t first = 0; first < data.shard.count; first += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, data.shard.count - first);
    sums += (f(first, rows) * weights.narrow(0, first, rows).unsqueeze(1)).sum(0);
  }
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + data.dim);
}

// First pass: μ and v0 (from the sums of x, the training row count and the sum of values).
void fit_means(const data::Dataset& data, const torch::Tensor& weights, const parallel::Comm& comm,
               model::Standardization& st, double& count) {
  const auto n = static_cast<size_t>(data.dim);
  std::vector<double> sums = column_sums(data, weights, [&](int64_t f, int64_t r) { return block_of(data.x, f, r); });
  sums.push_back(weights.sum().item<double>());
  sums.push_back(data.has_values() ? (data.values.to(torch::kCPU, torch::kFloat64) * weights).sum().item<double>()
                                   : 0.0);
  comm.allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  count = sums[n];
  st.mean.assign(sums.begin(), sums.begin() + data.dim);
  for (double& m : st.mean) m = count > 0 ? m / count : 0.0;
  st.value_offset = count > 0 ? sums[n + 1] / count : 0.0;
}

}  // namespace

model::Standardization fit_standardization(const data::Dataset& data, const config::TrainSpec& spec,
                                           const parallel::Comm& comm) {
  const auto weights = training_weights(data, spec);
  model::Standardization st;
  double count = 0;
  fit_means(data, weights, comm, st, count);
  const auto mean = torch::tensor(st.mean, torch::kFloat64);
  std::vector<double> sums =
      column_sums(data, weights, [&](int64_t f, int64_t r) { return (block_of(data.x, f, r) - mean).square(); });
  const auto s_sums =
      column_sums(data, weights, [&](int64_t f, int64_t r) { return block_of(data.grad_samples, f, r).square(); });
  sums.insert(sums.end(), s_sums.begin(), s_sums.end());
  comm.allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
  double target_sq = 0;
  st.scale.resize(st.mean.size());
  for (size_t i = 0; i < st.scale.size(); ++i) {
    const double sigma = count > 0 ? std::sqrt(sums[i] / count) : 0.0;
    const bool constant = !(sigma > 1e-12 * std::abs(st.mean[i]));  // also 0 and NaN
    st.scale[i] = constant ? 1.0 : sigma;
    target_sq += st.scale[i] * st.scale[i] * sums[st.scale.size() + i];
  }
  const double rms = count > 0 ? std::sqrt(target_sq / (count * static_cast<double>(data.dim))) : 0.0;
  st.value_scale = rms > 0 && std::isfinite(rms) ? rms : 1.0;
  return st;
}

namespace {

// t = transform(t), in place, a block of rows at a time (the float64 intermediates stay one block's size).
template <class F>
void transform_in_blocks(const torch::Tensor& t, F transform) {
  for (int64_t first = 0; first < t.size(0); first += kBlockRows) {
    auto block = t.narrow(0, first, std::min(kBlockRows, t.size(0) - first));
    block.copy_(transform(block));
  }
}

}  // namespace

void standardize_dataset(data::Dataset& data, const model::Standardization& st) {
  torch::NoGradGuard no_grad;
  transform_in_blocks(data.x, [&](const torch::Tensor& b) { return model::standardize_inputs(st, b); });
  transform_in_blocks(data.grad_samples, [&](const torch::Tensor& b) { return model::standardize_gradients(st, b); });
  if (data.has_values())
    transform_in_blocks(data.values, [&](const torch::Tensor& b) { return model::standardize_values(st, b); });
  data.standardization = st;
}

namespace {

// One run's sums over this shard, in the model's units, float64: per component Σ r̃_i² and Σ S̃_i² over the
// training rows, Σ (Ṽ − ṽ)² over them, then per component Σ r̃_i² and Σ (Ṽ − ṽ)² over the held-out rows.
std::vector<double> error_sums(model::Mlp& mlp, const data::Dataset& data, const torch::Tensor& weights) {
  const int64_t n = data.dim;
  auto sums = torch::zeros({3 * n + 2}, torch::kFloat64);
  for (int64_t first = 0; first < data.shard.count; first += kBlockRows) {
    const int64_t rows = std::min(kBlockRows, data.shard.count - first);
    const auto x = data.x.narrow(0, first, rows).detach().requires_grad_(true);
    const auto v = mlp->forward(x);
    const auto g = torch::autograd::grad({v}, {x}, /*grad_outputs=*/{torch::ones_like(v)}, /*retain_graph=*/false,
                                         /*create_graph=*/false)[0];
    const auto train = weights.narrow(0, first, rows).unsqueeze(1), val = 1.0 - train;
    const auto e2 = (block_of(g, 0, rows) - block_of(data.grad_samples, first, rows)).square();
    sums.narrow(0, 0, n) += (e2 * train).sum(0);
    sums.narrow(0, n, n) += (block_of(data.grad_samples, first, rows).square() * train).sum(0);
    sums.narrow(0, 2 * n + 1, n) += (e2 * val).sum(0);
    if (!data.has_values()) continue;
    const auto ve2 = (block_of(v.detach(), 0, rows) - block_of(data.values, first, rows)).square().unsqueeze(1);
    sums[2 * n] += (ve2 * train).sum();
    sums[3 * n + 1] += (ve2 * val).sum();
  }
  return std::vector<double>(sums.data_ptr<double>(), sums.data_ptr<double>() + sums.numel());
}

model::Mlp model_of(const config::RunSpec& run, const data::Dataset& data, const records::NamedTensors& weights) {
  auto mlp = model::make_mlp(run.model, data.dim, /*seed=*/0);
  torch::NoGradGuard no_grad;
  auto named = mlp->named_parameters();
  for (const auto& [name, tensor] : weights) named[name].copy_(tensor);
  mlp->to(data.x.device());
  for (auto& p : mlp->parameters()) p.requires_grad_(false);  // derivatives by x only
  return mlp;
}

}  // namespace

void final_metrics_in_user_units(std::vector<records::TrainResult>& results, const config::RunSpec& run,
                                 const data::Dataset& data, const parallel::Comm& comm) {
  const auto& st = data.standardization;
  if (!st.active()) return;
  const auto weights = training_weights(data, run.train);
  const auto factors = model::squared_gradient_factors(st, data.dim);
  const auto n = static_cast<size_t>(data.dim);
  const double value_weight = data.has_values() ? run.train.value_weight : 0.0, s2 = st.value_scale * st.value_scale;
  double train_count = weights.sum().item<double>();
  comm.allreduce_sum(&train_count, 1);
  const double val_count = static_cast<double>(data.total_rows) - train_count;
  for (auto& result : results) {
    auto mlp = model_of(run, data, result.parameters);
    std::vector<double> sums = error_sums(mlp, data, weights);
    comm.allreduce_sum(sums.data(), static_cast<int64_t>(sums.size()));
    double train_sse = 0, target_sq = 0, val_sse = 0;
    for (size_t i = 0; i < n; ++i) {
      train_sse += factors[i] * sums[i];
      target_sq += factors[i] * sums[n + i];
      val_sse += factors[i] * sums[2 * n + 1 + i];
    }
    const double dims = static_cast<double>(n);
    auto& final = result.final;
    final.train_loss = train_sse / (train_count * dims) + value_weight * s2 * sums[2 * n] / train_count;
    final.rel_grad_error = target_sq > 0 ? std::sqrt(train_sse / target_sq) : std::sqrt(train_sse);
    if (val_count > 0 && run.train.val_fraction > 0)
      final.val_loss = val_sse / (val_count * dims) + value_weight * s2 * sums[3 * n + 1] / val_count;
  }
}

}  // namespace gradfit::train
