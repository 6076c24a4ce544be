#include "train/engine.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "model/analytic.h"
#include "model/analytic_atoms.h"
#include "model/analytic_frames.h"
#include "model/loss.h"

namespace gradfit::train {
namespace {

// The gradients accumulate straight into the buffer, for one run or an ensemble. `Loss`: model::AnalyticLoss (one
// network of φ) or model::AtomsAnalyticLoss (φ per atom, one network per element), which compute alike.
template <typename Loss>
class AnalyticEngine : public Engine {
 public:
  AnalyticEngine(Loss loss, std::vector<torch::Tensor> gradient_views, double value_weight)
      : loss_(std::move(loss)), gradient_views_(std::move(gradient_views)), value_weight_(value_weight) {}

  void accumulate(const Batch& batch, int64_t count, torch::Tensor& sums) override {
    if (batch.size() == 0) return;
    loss_.accumulate(batch.x, batch.grad_samples, batch.values, value_weight_, count, gradient_views_, sums,
                     batch.weights);
  }
  void evaluate(const Batch& batch, int64_t, torch::Tensor& sums) override {
    if (batch.size() == 0) return;
    loss_.evaluate(batch.x, batch.grad_samples, batch.values, value_weight_, sums, batch.weights);
  }

 private:
  Loss loss_;
  std::vector<torch::Tensor> gradient_views_;  // one per parameter (of every network), R × shape, into the buffer
  double value_weight_;
};

std::unique_ptr<Engine> make_analytic_engine(const config::RunSpec& run, Weights& weights,
                                             parallel::GradientAllreduce& allreduce, const model::Features& features,
                                             int64_t chunk_rows, double value_weight) {
  auto gradient_views = model::ensemble_views(allreduce.gradients().view({weights.flat.size(0), -1}), weights.networks);
  const model::GradientLoss gradient_loss{run.train.loss, run.train.huber_delta};
  if (features.kind().atom_layout() != nullptr) {
    model::AtomsAnalyticLoss loss(run.model.activation, weights.params, weights.networks, chunk_rows, features);
    loss.set_gradient_loss(gradient_loss);
    return std::make_unique<AnalyticEngine<model::AtomsAnalyticLoss>>(std::move(loss), std::move(gradient_views),
                                                                      value_weight);
  }
  model::AnalyticLoss loss(run.model.activation, weights.params, chunk_rows);
  loss.set_gradient_loss(gradient_loss);
  loss.set_features(features);
  return std::make_unique<AnalyticEngine<model::AnalyticLoss>>(std::move(loss), std::move(gradient_views),
                                                               value_weight);
}

// The frames layout: a batch's frames (rows of the shard) as the loss's views of the dataset's frames.
class FramesEngine : public Engine {
 public:
  FramesEngine(model::FramesAnalyticLoss loss, std::vector<torch::Tensor> gradient_views, const data::Dataset& data,
               double components_per_row, double value_weight)
      : loss_(std::move(loss)),
        gradient_views_(std::move(gradient_views)),
        frames_(*data.frames),
        components_per_row_(components_per_row),
        value_weight_(value_weight) {
    first_atom_.push_back(0);
    for (const int64_t a : frames_.atoms) first_atom_.push_back(first_atom_.back() + a);
    if (data.has_values()) values_ = data.values.to(torch::kCPU, torch::kFloat64).contiguous();
  }

  void accumulate(const Batch& batch, int64_t count, torch::Tensor& sums) override {
    if (batch.size() == 0) return;
    loss_.accumulate(views(batch), value_weight_, count, components_per_row_, gradient_views_, sums);
  }
  void evaluate(const Batch& batch, int64_t, torch::Tensor& sums) override {
    if (batch.size() == 0) return;
    loss_.evaluate(views(batch), value_weight_, sums);
  }

 private:
  std::vector<model::FrameView> views(const Batch& batch) const {
    std::vector<model::FrameView> out;
    const auto rows = batch.frames.contiguous();
    for (int64_t k = 0; k < rows.size(0); ++k) {
      const auto f = static_cast<size_t>(rows.data_ptr<int64_t>()[k]);
      const size_t at = first_atom_[f];
      out.push_back({frames_.atoms[f], frames_.positions.data() + 3 * at, frames_.numbers.data() + at,
                     frames_.grad.data() + 3 * at, &frames_.cells[f],
                     values_.defined() ? values_.data_ptr<double>()[f] : 0.0});
    }
    return out;
  }

  model::FramesAnalyticLoss loss_;
  std::vector<torch::Tensor> gradient_views_;
  const data::Frames& frames_;
  std::vector<size_t> first_atom_;  // per frame of the shard, and the atoms at the end
  torch::Tensor values_;            // per frame, float64 (as the dataset holds them: less the element energies)
  double components_per_row_, value_weight_;
};

// One run by double backward through LibTorch's autograd, chunk by chunk, its .grad accumulating; then copied into
// the buffer.
class AutogradEngine : public Engine {
 public:
  AutogradEngine(const config::RunSpec& run, Weights& weights, parallel::GradientAllreduce& allreduce,
                 int64_t chunk_rows, double value_weight)
      : gradient_loss_{run.train.loss, run.train.huber_delta},
        model_(weights.first),
        params_(model_->parameters()),
        allreduce_(allreduce),
        chunk_rows_(chunk_rows),
        value_weight_(value_weight) {}

  void accumulate(const Batch& batch, int64_t count, torch::Tensor& sums) override {
    for (auto& p : params_) p.mutable_grad().reset();
    add_chunks(batch, count, sums, /*create_graph=*/true);
    allreduce_.gather_gradients();
  }
  void evaluate(const Batch& batch, int64_t count, torch::Tensor& sums) override {
    add_chunks(batch, count, sums, /*create_graph=*/false);
  }

 private:
  void add_chunks(const Batch& batch, int64_t count, torch::Tensor& sums, bool create_graph) {
    for (int64_t first = 0; first < batch.size(); first += chunk_rows_) {
      const Batch chunk = batch.rows(first, std::min(chunk_rows_, batch.size() - first));
      auto terms = model::gradient_matching_loss(model_, chunk.x, chunk.grad_samples, chunk.values, value_weight_,
                                                 count, create_graph, gradient_loss_, chunk.weights);
      if (create_graph) terms.loss.backward();
      sums[0][kGradSse].add_(terms.grad_sse);
      sums[0][kValueSse].add_(terms.value_sse);
      if (gradient_loss_.kind == config::Loss::huber) sums[0][kGradLoss].add_(terms.grad_loss);
    }
  }

  model::GradientLoss gradient_loss_;
  model::Mlp model_;
  std::vector<torch::Tensor> params_;
  parallel::GradientAllreduce& allreduce_;
  int64_t chunk_rows_;
  double value_weight_;
};

}  // namespace

std::unique_ptr<Engine> make_frames_engine(const config::RunSpec& run, Weights& weights,
                                           parallel::GradientAllreduce& allreduce, const data::Dataset& data,
                                           int64_t chunk_atoms, double components_per_row, double value_weight) {
  auto gradient_views = model::ensemble_views(allreduce.gradients().view({weights.flat.size(0), -1}), weights.networks);
  const int64_t largest =
      data.frames->atoms.empty() ? 1 : *std::max_element(data.frames->atoms.begin(), data.frames->atoms.end());
  model::FramesAnalyticLoss loss(run.model.activation, weights.params, weights.networks, run.model.descriptor,
                                 data.numbers, chunk_atoms, largest);
  loss.set_gradient_loss({run.train.loss, run.train.huber_delta});
  loss.set_options(data.options());
  return std::make_unique<FramesEngine>(std::move(loss), std::move(gradient_views), data, components_per_row,
                                        value_weight);
}

std::unique_ptr<Engine> make_engine(config::Engine kind, const config::RunSpec& run, Weights& weights,
                                    parallel::GradientAllreduce& allreduce, const model::Features& features,
                                    int64_t chunk_rows, double value_weight) {
  if (kind == config::Engine::analytic)
    return make_analytic_engine(run, weights, allreduce, features, chunk_rows, value_weight);
  return std::make_unique<AutogradEngine>(run, weights, allreduce, chunk_rows, value_weight);
}

}  // namespace gradfit::train
