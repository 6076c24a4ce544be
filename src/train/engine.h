#pragma once
// How a step's weight gradient is computed. An engine adds the gradient of every run's loss
//   loss = grad_loss / (count × n) + value_weight × value_sse / count
// over a batch to the gradient allreduce buffer, and the batch's sums to `sums` (R × kSums: per run, Σ||dV/dx − S||²,
// Σ(V − value)² and, for train.loss huber, grad_loss = Σ huber_δ(dV/dx − S) over the components; for mse grad_loss is
// the first sum and the third stays 0). Two engines compute the same numbers: the analytic double backward of
// model/analytic.h (one run or an ensemble), and LibTorch's autograd (one run; the reference).
#include <torch/torch.h>

#include <cstdint>
#include <memory>

#include "config/config.h"
#include "model/features.h"
#include "parallel/grad_sync.h"
#include "train/batches.h"
#include "train/weights.h"

namespace gradfit::train {

// The columns of the loss sums, per run.
inline constexpr int64_t kSums = 3;
inline constexpr int64_t kGradSse = 0, kValueSse = 1, kGradLoss = 2;
// The column that holds the gradient term of the loss: kGradLoss for huber, kGradSse for mse.
inline int64_t loss_column(const config::TrainSpec& spec) {
  return spec.loss == config::Loss::huber ? kGradLoss : kGradSse;
}

class Engine {
 public:
  virtual ~Engine() = default;
  // Every rank, once per step, after the buffer was zeroed: writes this rank's part of the step's gradient into
  // the buffer and adds the batch's sums. `batch` may be empty (this rank owns none of the global batch);
  // `count`: the global batch's size.
  virtual void accumulate(const Batch& batch, int64_t count, torch::Tensor& sums) = 0;
  // Adds only the sums (validation); `count`: the global number of rows evaluated.
  virtual void evaluate(const Batch& batch, int64_t count, torch::Tensor& sums) = 0;
};

// The engine `kind` for `weights`, writing into `allreduce` (whose parameters must be weights.flat for the
// analytic engine, the first model's parameters for autograd, whose own features must be `features`), through
// `features` (the run's, scaled where the data are standardized). `value_weight`: 0 without values.
std::unique_ptr<Engine> make_engine(config::Engine kind, const config::RunSpec& run, Weights& weights,
                                    parallel::GradientAllreduce& allreduce, const model::Features& features,
                                    int64_t chunk_rows, double value_weight);

// The analytic engine on the frames layout (data.is_frames(); model/analytic_frames.h): batches of frames of
// `data`, their atoms `chunk_atoms` at a time; the loss's grad_loss / (count × n), n = `components_per_row`
// (DataSplit's). Keeps a reference to `data`.
std::unique_ptr<Engine> make_frames_engine(const config::RunSpec& run, Weights& weights,
                                           parallel::GradientAllreduce& allreduce, const data::Dataset& data,
                                           int64_t chunk_atoms, double components_per_row, double value_weight);

}  // namespace gradfit::train
