#pragma once
// The weights of a job's runs (one run, or an ensemble) and what each run carries from epoch to epoch, with the
// checkpoint of a run taken from that state and put back into it.
#include <torch/torch.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "config/config.h"
#include "model/mlp.h"
#include "records/records.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace gradfit::train {

// Each run's model, initialised from its own seed, its parameters stacked a run per row of one (R × P) tensor on
// the data's device. The first run's model keeps its parameters as views of row 0 (the autograd engine uses it).
struct Weights {
  model::Mlp first{nullptr};
  std::vector<std::string> names;     // of the parameters, in order
  torch::Tensor flat;                 // R × P
  std::vector<torch::Tensor> params;  // one per parameter, R × shape (model::ensemble_views)
  model::NetworkShape networks;       // one network, or one per element
  // Views like `params` of another R × P tensor laid out as `flat` (saved, ema).
  std::vector<torch::Tensor> views_of(const torch::Tensor& like_flat) const;
  // R × P: the weights each run is saved with: with validation its best so far, else copied when it ends.
  torch::Tensor saved;
  // R × P, with train.ema_decay: each run's moving average of its weights (update_ema); undefined without.
  torch::Tensor ema;
  // Run r's parameters by name, copied to the CPU: its current ones, or those it is saved with.
  NamedTensors of_run(int64_t r) const;
  NamedTensors saved_of_run(int64_t r) const;
  NamedTensors judged_of_run(int64_t r) const;  // its moving average where it has one, else its weights
};
// Initialises every run's model as make_mlp does from its seed, in order; `options`: the data's dtype and device.
Weights make_weights(const std::vector<config::RunSpec>& runs, int64_t input_dim, const torch::TensorOptions& options);

// The moving average after an optimizer step: ema = decay·ema + (1 − decay)·w, each product rounded, then their sum,
// as torch.optim.swa_utils.AveragedModel with avg_fn = lambda e, w, n: decay * e + (1 - decay) * w computes it.
void update_ema(Weights& weights, double decay);
// The weights each run is judged and saved by (R × P): the moving average where there is one, else the weights.
const torch::Tensor& judged(const Weights& weights);

// While it lives, weights.flat holds the moving average, so that the engines (which read weights.flat) evaluate
// what each run is judged by; the trained weights are put back, bit for bit, when it ends. Nothing without one.
class JudgedWeightsInPlace {
 public:
  explicit JudgedWeightsInPlace(Weights& weights);
  ~JudgedWeightsInPlace();
  JudgedWeightsInPlace(const JudgedWeightsInPlace&) = delete;
  JudgedWeightsInPlace& operator=(const JudgedWeightsInPlace&) = delete;

 private:
  Weights& weights_;
  torch::Tensor trained_;  // a copy of the trained weights while the average stands in
};

// One run of a job as it trains; its weights are row `member` of the job's Weights, its optimizer state row
// `member` of the job's optimizer.
struct RunState {
  int64_t member = 0;
  records::TrainResult result;  // the history so far; status and parameters once it ends
  bool active = true;           // still training
  double best_val_loss = std::numeric_limits<double>::infinity();  // with validation
  int64_t best_epoch = 0;                                          // 0: none yet
  int64_t epochs_since_best = 0;                                   // early stopping
  LrSchedule schedule;                                             // its learning rate, epoch by epoch
};

// Sets run r's weights from `named` (each parameter of the model once, shapes as the model's; converted to its
// dtype). Throws Error starting with `source` on a missing, unknown or misshapen parameter.
void set_weights(Weights& weights, int64_t r, const NamedTensors& named, const std::string& source);

// The run's state to continue at batch `next_batch` of `epoch` (the epoch's partial sums are the caller's).
records::Checkpoint snapshot(const RunState& run, const Weights& weights, const FlatOptimizer& optimizer, int64_t epoch,
                             int64_t next_batch);
// Puts a run's saved weights, optimizer state, schedule, history and early-stopping state back. Throws Error naming
// `run_name` when the checkpoint lacks a parameter.
void restore(RunState& run, Weights& weights, FlatOptimizer& optimizer, const records::Checkpoint& checkpoint,
             const std::string& run_name);

}  // namespace gradfit::train
