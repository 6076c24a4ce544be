#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <memory>
#include <random>

#include "common/error.h"
#include "dist/grad_sync.h"
#include "model/loss.h"
#include "model/mlp.h"

namespace gradfit::train {
namespace {

using Clock = std::chrono::steady_clock;

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const config::TrainSpec& spec,
                                                        const std::vector<torch::Tensor>& params) {
  switch (spec.optimizer) {
    case config::Optimizer::adam:
      return std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(spec.lr));
    case config::Optimizer::sgd:
      return std::make_unique<torch::optim::SGD>(params, torch::optim::SGDOptions(spec.lr).momentum(spec.momentum));
  }
  throw ConfigError("unknown optimizer");
}

// Indices in [0, bound), from a generator whose output the C++ standard fixes (std::mt19937_64), with Lemire's
// multiply-shift, so the permutation is the same with any standard library.
uint64_t bounded(std::mt19937_64& rng, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * bound) >> 64);
}

}  // namespace

BatchPlan plan_batches(int64_t total_rows, int64_t batch_size, uint64_t seed, int64_t epoch, const dist::Shard& shard) {
  BatchPlan plan;
  if (batch_size <= 0 || batch_size >= total_rows) {  // full batch: every local row, in order
    plan.local_rows.emplace_back(shard.count);
    for (int64_t i = 0; i < shard.count; ++i) plan.local_rows[0][i] = i;
    plan.global_sizes.push_back(total_rows);
    return plan;
  }
  std::vector<int64_t> order(total_rows);
  for (int64_t i = 0; i < total_rows; ++i) order[i] = i;
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(epoch),
                    static_cast<uint32_t>(epoch >> 32)};
  std::mt19937_64 rng(seq);
  for (int64_t i = total_rows - 1; i > 0; --i) std::swap(order[i], order[bounded(rng, i + 1)]);

  const int64_t batches = (total_rows + batch_size - 1) / batch_size;
  plan.local_rows.resize(batches);
  plan.global_sizes.resize(batches);
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t first = b * batch_size;
    const int64_t last = std::min(total_rows, first + batch_size);
    plan.global_sizes[b] = last - first;
    for (int64_t k = first; k < last; ++k)
      if (order[k] >= shard.begin && order[k] < shard.end()) plan.local_rows[b].push_back(order[k] - shard.begin);
  }
  return plan;
}

TrainResult train(const config::RunSpec& run, const data::Dataset& data, const dist::Comm& comm,
                  const EpochCallback& on_epoch) {
  const auto start = Clock::now();
  const auto& spec = run.train;
  auto model = model::make_mlp(run.model, data.dim, spec.seed);
  model->to(data.x.device());
  auto params = model->parameters();
  dist::broadcast_parameters(params, comm);
  auto optimizer = make_optimizer(spec, params);
  const double value_weight = data.has_values() ? spec.value_weight : 0.0;

  // Slots riding along with the gradients: this step's sum of squared gradient errors and of value errors.
  dist::GradientAllreduce allreduce(params, /*extra_slots=*/2);
  const auto options = data.x.options();
  // ||S||^2 over all samples, for the relative error.
  double target_norm_sq = data.grad_samples.to(torch::kFloat64).pow(2).sum().item<double>();
  comm.allreduce_sum(&target_norm_sq, 1);
  const double denominator = static_cast<double>(data.total_rows) * static_cast<double>(data.dim);

  TrainResult result;
  for (const auto& p : params) result.parameter_count += p.numel();
  for (int64_t epoch = 1; epoch <= spec.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    const BatchPlan plan = plan_batches(data.total_rows, spec.batch_size, spec.seed, epoch, data.shard);
    const bool full_batch = plan.local_rows.size() == 1;
    auto epoch_sums = torch::zeros({2}, options);  // summed over batches; stays on the device until epoch end
    for (size_t b = 0; b < plan.local_rows.size(); ++b) {
      for (auto& p : params) p.mutable_grad().reset();
      const auto& rows = plan.local_rows[b];
      std::vector<torch::Tensor> sums{torch::zeros({}, options), torch::zeros({}, options)};
      if (!rows.empty()) {
        torch::Tensor x = data.x, s = data.grad_samples, v = data.values;
        if (!full_batch) {
          const auto index = torch::tensor(rows, torch::kInt64).to(options.device());
          x = x.index_select(0, index);
          s = s.index_select(0, index);
          if (v.defined()) v = v.index_select(0, index);
        }
        auto terms = model::gradient_matching_loss(model, x, s, v, value_weight, plan.global_sizes[b]);
        terms.loss.backward();
        sums = {terms.grad_sse, terms.value_sse};
      }
      epoch_sums += allreduce.reduce(sums, comm);
      optimizer->step();
    }

    const auto sums = epoch_sums.to(torch::kFloat64).cpu();
    const double grad_sse = sums[0].item<double>();
    const double value_sse = sums[1].item<double>();
    EpochRecord record;
    record.epoch = epoch;
    record.train_loss = grad_sse / denominator + value_weight * value_sse / static_cast<double>(data.total_rows);
    record.rel_grad_error = target_norm_sq > 0 ? std::sqrt(grad_sse / target_norm_sq) : std::sqrt(grad_sse);
    record.seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    result.history.push_back(record);
    if (on_epoch) on_epoch(record);
    if (!std::isfinite(record.train_loss)) {  // every rank sees the same reduced loss, so all stop together
      result.status = "diverged";
      break;
    }
  }

  for (const auto& item : model->named_parameters())
    result.parameters.emplace_back(item.key(), item.value().detach().cpu().clone());
  result.wall_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  result.allreduce_seconds = allreduce.seconds();
  return result;
}

}  // namespace gradfit::train
