#include "train/weights.h"

#include <algorithm>

#include "common/error.h"
#include "model/analytic.h"

namespace gradfit::train {

Weights make_weights(const std::vector<config::RunSpec>& runs, int64_t input_dim, const torch::TensorOptions& options) {
  Weights w;
  std::vector<torch::Tensor> rows;
  for (const auto& run : runs) {
    auto model = model::make_mlp(run.model, input_dim, run.train.seed);
    std::vector<torch::Tensor> flat;
    for (const auto& p : model->parameters()) flat.push_back(p.detach().reshape(-1));
    rows.push_back(torch::cat(flat));
    if (w.first.is_empty()) w.first = model;
  }
  // Each row followed by a gap (kRowGap), as the optimizer's state: see FlatOptimizer.
  const int64_t models = static_cast<int64_t>(rows.size()), per_model = rows.front().numel();
  const int64_t gap = models == 1 ? 0 : kRowGap;
  w.flat = torch::zeros({models, per_model + gap}, options).narrow(1, 0, per_model);
  w.flat.copy_(torch::stack(rows));
  for (const auto& item : w.first->named_parameters()) w.names.push_back(item.key());
  w.params = model::ensemble_views(w.flat, input_dim, runs.front().model.widths);
  torch::NoGradGuard no_grad;
  auto params = w.first->parameters();
  for (size_t i = 0; i < params.size(); ++i) params[i].set_data(w.params[i][0]);
  return w;
}

records::NamedTensors Weights::of_run(int64_t r) const {
  records::NamedTensors named;
  for (size_t i = 0; i < names.size(); ++i) named.emplace_back(names[i], params[i][r].detach().cpu().clone());
  return named;
}

records::Checkpoint snapshot(const RunState& run, const Weights& weights, const FlatOptimizer& optimizer, int64_t epoch,
                             int64_t next_batch) {
  records::Checkpoint c;
  c.member = static_cast<size_t>(run.member);
  c.epoch = epoch;
  c.next_batch = next_batch;
  c.history = run.result.history;
  c.parameters = weights.of_run(run.member);
  c.optimizer_state = optimizer.save(run.member);
  c.best_val_loss = run.best_val_loss;
  c.epochs_since_best = run.epochs_since_best;
  return c;
}

void restore(RunState& run, Weights& weights, FlatOptimizer& optimizer, const records::Checkpoint& checkpoint,
             const std::string& run_name) {
  {
    torch::NoGradGuard no_grad;
    for (const auto& [name, tensor] : checkpoint.parameters) {
      const auto it = std::find(weights.names.begin(), weights.names.end(), name);
      if (it == weights.names.end()) throw Error("checkpoint of run " + run_name + " has no parameter " + name);
      weights.params[it - weights.names.begin()][run.member].copy_(tensor);
    }
  }
  optimizer.load(checkpoint.optimizer_state, weights.flat.device(), run.member);
  run.result.history = checkpoint.history;
  run.best_val_loss = checkpoint.best_val_loss;
  run.epochs_since_best = checkpoint.epochs_since_best;
}

}  // namespace gradfit::train
