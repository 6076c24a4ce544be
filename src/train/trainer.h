#pragma once
// The training loop of one run, data-parallel over the ranks of a communicator: epochs -> global batches ->
// each rank's members of the batch -> one allreduce -> identical optimizer steps on every rank.
//
// Or of an ensemble: several runs that differ only in their initialisation seed, learning rate or momentum (same
// data, architecture, batches and epochs), trained together as one batched model (weights stacked, the matrix
// products batched over the runs, one allreduce and one optimizer step for all), each run with its own optimizer
// state, loss history, stopping and checkpoints. Each run gets the numbers it gets trained alone, up to rounding.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "records/records.h"
#include "parallel/comm.h"
#include "parallel/shard.h"

namespace gradfit::train {

using records::Checkpoint;
using records::EpochRecord;
using records::TrainResult;

struct TrainHooks {
  // Every rank, after every epoch, for each run of the ensemble still training (`member`: its position).
  std::function<void(size_t member, const EpochRecord&)> on_epoch;
  std::function<void()> between_steps;  // every rank, after every optimizer step (must be cheap)
  // Every rank, before each step's allreduce: true asks the whole group to checkpoint and stop after this step
  // (a signal arrived). The ranks agree through the allreduce itself.
  std::function<bool()> stop_requested;
  // The group's rank 0, before each step's allreduce: true asks for a checkpoint after this step.
  std::function<bool()> checkpoint_due;
  // Every rank, when a checkpoint is taken: one per run still training, all at the same step (the group's rank 0
  // writes them).
  std::function<void(const std::vector<Checkpoint>&)> save_checkpoint;
};

// Trains the model of `run` on this rank's shard, on the shard's device, from scratch or from `resume`.
// Collective over `comm`: every rank calls it with its own shard of the same data and gets the same result.
TrainResult train(const config::RunSpec& run, const data::Dataset& data, const parallel::Comm& comm,
                  const TrainHooks& hooks = {}, const Checkpoint* resume = nullptr);

// Trains `runs` as one ensemble (see the top of this file); they must share ensemble_key(). `resume`: empty, or a
// checkpoint for every run, all taken at the same step. Returns a result per run, in order.
std::vector<TrainResult> train_ensemble(const std::vector<config::RunSpec>& runs, const data::Dataset& data,
                                        const parallel::Comm& comm, const TrainHooks& hooks = {},
                                        const std::vector<const Checkpoint*>& resume = {});

// Runs with the same non-empty key can be trained as one ensemble: every setting but the initialisation seed,
// learning rate and momentum (and the seed too where it orders mini-batches or picks validation rows). Empty for
// runs that train alone (train.engine autograd).
std::string ensemble_key(const config::RunSpec& run);

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
BatchPlan plan_batches(int64_t total_rows, int64_t batch_size, uint64_t seed, int64_t epoch, const parallel::Shard& shard,
                       const std::vector<uint8_t>& held_out = {});

}  // namespace gradfit::train
