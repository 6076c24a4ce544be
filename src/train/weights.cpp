#include "train/weights.h"

#include <algorithm>
#include <cmath>

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
  w.networks = model::network_shape(runs.front().model, input_dim);
  w.params = w.views_of(w.flat);
  w.saved = torch::zeros({models, per_model}, options);
  if (runs.front().train.ema_decay > 0) w.ema = w.flat.clone();  // the trainer starts it from the initial weights
  torch::NoGradGuard no_grad;
  auto params = w.first->parameters();
  for (size_t i = 0; i < params.size(); ++i) params[i].set_data(w.params[i][0]);
  return w;
}

std::vector<torch::Tensor> Weights::views_of(const torch::Tensor& like_flat) const {
  return model::ensemble_views(like_flat, networks);
}

namespace {

// Row r of R models' flat parameters (R × P), by name and shaped like the model's.
NamedTensors named_row(const Weights& w, const torch::Tensor& flat, int64_t r) {
  NamedTensors named;
  int64_t offset = 0;
  for (size_t i = 0; i < w.names.size(); ++i) {
    const torch::Tensor like = w.params[i][r];  // shaped as the parameter
    named.emplace_back(w.names[i], flat[r].narrow(0, offset, like.numel()).view(like.sizes()).detach().cpu().clone());
    offset += like.numel();
  }
  return named;
}

}  // namespace

NamedTensors Weights::of_run(int64_t r) const {
  return named_row(*this, flat, r);
}

NamedTensors Weights::saved_of_run(int64_t r) const {
  return named_row(*this, saved, r);
}

NamedTensors Weights::judged_of_run(int64_t r) const {
  return named_row(*this, judged(*this), r);
}

void update_ema(Weights& weights, double decay) {
  torch::NoGradGuard no_grad;
  weights.ema.copy_(torch::mul(weights.ema, decay).add_(torch::mul(weights.flat, 1 - decay)));
}

const torch::Tensor& judged(const Weights& weights) {
  return weights.ema.defined() ? weights.ema : weights.flat;
}

JudgedWeightsInPlace::JudgedWeightsInPlace(Weights& weights) : weights_(weights) {
  if (!weights_.ema.defined()) return;
  torch::NoGradGuard no_grad;
  trained_ = weights_.flat.clone();
  weights_.flat.copy_(weights_.ema);
}

JudgedWeightsInPlace::~JudgedWeightsInPlace() {
  if (!trained_.defined()) return;
  torch::NoGradGuard no_grad;
  weights_.flat.copy_(trained_);
}

namespace {

// Copies named tensors into row r of R models' parameters (views as ensemble_views gives).
void copy_named(const NamedTensors& named, const Weights& weights, const std::vector<torch::Tensor>& views, int64_t r,
                const std::string& run_name) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : named) {
    const auto it = std::find(weights.names.begin(), weights.names.end(), name);
    if (it == weights.names.end()) throw Error("checkpoint of run " + run_name + " has no parameter " + name);
    views[it - weights.names.begin()][r].copy_(tensor);
  }
}

}  // namespace

void set_weights(Weights& weights, int64_t r, const NamedTensors& named, const std::string& source) {
  if (named.size() != weights.names.size())
    throw Error(source + ": " + std::to_string(named.size()) + " parameters, the model has " +
                std::to_string(weights.names.size()) + " (another architecture)");
  for (const auto& [name, tensor] : named) {
    const auto it = std::find(weights.names.begin(), weights.names.end(), name);
    if (it == weights.names.end()) throw Error(source + ": no parameter '" + name + "' in this model");
    const torch::Tensor target = weights.params[it - weights.names.begin()][r];
    if (tensor.sizes() != target.sizes())
      throw Error(source + ": parameter '" + name + "' has shape " + c10::str(tensor.sizes()) + ", this model's " +
                  c10::str(target.sizes()) + " (another architecture)");
  }
  copy_named(named, weights, weights.params, r, source);
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
  c.schedule = run.schedule.state();
  c.best_val_loss = run.best_val_loss;
  c.best_epoch = run.best_epoch;
  if (run.best_epoch > 0) c.best_parameters = weights.saved_of_run(run.member);
  if (weights.ema.defined()) c.ema_parameters = named_row(weights, weights.ema, run.member);
  c.epochs_since_best = run.epochs_since_best;
  return c;
}

void restore(RunState& run, Weights& weights, FlatOptimizer& optimizer, const records::Checkpoint& checkpoint,
             const std::string& run_name) {
  copy_named(checkpoint.parameters, weights, weights.params, run.member, run_name);
  if (!checkpoint.best_parameters.empty())
    copy_named(checkpoint.best_parameters, weights, weights.views_of(weights.saved), run.member, run_name);
  if (weights.ema.defined()) {
    if (checkpoint.ema_parameters.empty()) throw Error("checkpoint of run " + run_name + " has no moving average");
    copy_named(checkpoint.ema_parameters, weights, weights.views_of(weights.ema), run.member, run_name);
  }
  try {
    optimizer.load(checkpoint.optimizer_state, weights.flat.device(), run.member);
  } catch (const Error& e) {
    throw Error("its checkpoint cannot be used: " + std::string(e.what()) +
                " (delete the checkpoint, or run with --fresh, to train the run from the start)");
  }
  run.schedule.restore(checkpoint.schedule, checkpoint.epoch - 1);
  run.result.history = checkpoint.history;
  for (auto& record : run.result.history)  // a checkpoint from before schedules: the rate was constant
    if (std::isnan(record.lr)) record.lr = run.schedule.lr();
  run.best_val_loss = checkpoint.best_val_loss;
  run.best_epoch = checkpoint.best_epoch;
  run.epochs_since_best = checkpoint.epochs_since_best;
}

}  // namespace gradfit::train
