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
  double train_loss = 0;      // mean over the epoch's samples, with each batch's weights before its step
  double rel_grad_error = 0;  // ||dV/dx - S|| / ||S|| over all samples, same weights as train_loss
  double seconds = 0;         // wall time of the epoch
};

struct TrainResult {
  std::vector<EpochRecord> history;
  std::vector<std::pair<std::string, torch::Tensor>> parameters;  // final weights, by name, on the CPU
  std::string status = "done";                                    // done | diverged
  double wall_seconds = 0;
  double allreduce_seconds = 0;  // of wall_seconds, in the gradient allreduce
  int64_t parameter_count = 0;
};

using EpochCallback = std::function<void(const EpochRecord&)>;

// Trains the model of `run` on this rank's shard, on the shard's device. Collective over `comm`: every rank calls
// it with its own shard of the same data and gets the same result. `on_epoch` is called on every rank after every
// epoch.
TrainResult train(const config::RunSpec& run, const data::Dataset& data, const dist::Comm& comm,
                  const EpochCallback& on_epoch = {});

// The global batches of one epoch: a permutation of 0..N-1 drawn from (seed, epoch) alone, cut into batches of
// `batch_size` (the last may be smaller). For each batch, the positions in this rank's shard of the members the
// rank owns, plus the batch's global size. Identical on any rank count.
struct BatchPlan {
  std::vector<std::vector<int64_t>> local_rows;  // per batch, rows relative to shard.begin
  std::vector<int64_t> global_sizes;             // per batch
};
BatchPlan plan_batches(int64_t total_rows, int64_t batch_size, uint64_t seed, int64_t epoch, const dist::Shard& shard);

}  // namespace gradfit::train
