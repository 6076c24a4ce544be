#pragma once
// The training loop of one run, data-parallel over the ranks of a communicator: epochs -> global batches ->
// each rank's members of the batch -> one allreduce -> identical optimizer steps on every rank.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "dist/mpi_env.h"

namespace gradfit::train {

// One row of the loss history, identical on every rank (metrics are reduced globally).
struct EpochRecord {
  int64_t epoch = 0;          // 1-based
  double train_loss = 0;      // mean over the epoch's training samples, each batch with its weights before its step
  double rel_grad_error = 0;  // ||dV/dx - S|| / ||S|| over the training samples, same weights as train_loss
  double val_loss = 0;        // on the held-out samples after the epoch's steps; NaN without validation
  double grad_norm = 0;       // largest norm of the summed weight gradient over the epoch's steps
  double seconds = 0;         // wall time of the epoch
};

struct TrainResult {
  std::vector<EpochRecord> history;
  std::vector<std::pair<std::string, torch::Tensor>> parameters;  // final weights, by name, on the CPU
  std::string status = "done";  // done | diverged (non-finite loss or gradient) | early_stopped (patience)
  double wall_seconds = 0;
  double allreduce_seconds = 0;  // of wall_seconds, in the gradient allreduce
  int64_t parameter_count = 0;
};

struct TrainHooks {
  std::function<void(const EpochRecord&)> on_epoch;  // every rank, after every epoch
  std::function<void()> between_steps;               // every rank, after every optimizer step (must be cheap)
};

// Trains the model of `run` on this rank's shard, on the shard's device. Collective over `comm`: every rank calls
// it with its own shard of the same data and gets the same result.
TrainResult train(const config::RunSpec& run, const data::Dataset& data, const dist::Comm& comm,
                  const TrainHooks& hooks = {});

// Which of the N rows are held out for validation: row i when a hash of (seed, i) falls below `fraction`. Depends
// on neither the rank count nor the shard. Empty when fraction is 0.
std::vector<uint8_t> holdout_rows(int64_t total_rows, double fraction, uint64_t seed);

// The global batches of one epoch: a permutation of the training rows (0..N-1 less those held out) drawn from
// (seed, epoch) alone, cut into batches of `batch_size` (the last may be smaller; 0 means one full batch). For each
// batch, the positions in this rank's shard of the members the rank owns, plus the batch's global size. Identical
// on any rank count.
struct BatchPlan {
  std::vector<std::vector<int64_t>> local_rows;  // per batch, rows relative to shard.begin
  std::vector<int64_t> global_sizes;             // per batch
};
BatchPlan plan_batches(int64_t total_rows, int64_t batch_size, uint64_t seed, int64_t epoch, const dist::Shard& shard,
                       const std::vector<uint8_t>& held_out = {});

}  // namespace gradfit::train
