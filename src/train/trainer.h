#pragma once
// The training loop of one run, data-parallel over the ranks of a communicator: epochs -> global batches ->
// each rank's members of the batch -> one allreduce -> identical optimizer steps on every rank.
//
// Or of an ensemble: several runs that differ only in their initialisation seed and their optimizer's rates
// (learning rate and its schedule, momentum, weight decay; same data, architecture, batches and epochs), trained
// together as one batched model (weights stacked, the matrix products batched over the runs, one allreduce and one
// optimizer step for all), each run with its own optimizer state, loss history, stopping and checkpoints. Each run
// gets the numbers it gets trained alone, up to rounding.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "parallel/comm.h"
#include "records/records.h"
#include "train/batches.h"

namespace gradfit::train {

// The records this loop fills (records/records.h), by their short names.
using records::Checkpoint;
using records::EpochRecord;
using records::TrainResult;

struct TrainHooks {
  // Every rank, after every epoch, for each run of the ensemble still training (`member`: its position).
  std::function<void(size_t member, const EpochRecord&)> on_epoch;
  std::function<void()> between_steps;  // every rank, after every optimizer step (must be cheap)
  // Every rank, before each step's allreduce: true asks the whole group to checkpoint and stop after this step
  // (a signal arrived). The ranks agree through the allreduce itself. The runs stopped end `interrupted`.
  std::function<bool()> stop_requested;
  // The group's rank 0, before each step's allreduce: true asks for a checkpoint after this step.
  // stop_requested and checkpoint_due must be set on every rank of the group or on none: where they are set,
  // every step reads the group's requests back from the allreduce.
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
// checkpoint for every run, all taken at the same step. `initial`: empty, or per run the weights to start from
// (train.init_from; nullptr: from its seed), which a checkpoint overrides. `pause_after_epoch` > 0 (below
// train.epochs): the runs stop after that epoch, checkpointed (save_checkpoint) to continue, and end `paused` (no
// epoch at all when a checkpoint resumes past it). Returns a result per run, in order.
std::vector<TrainResult> train_ensemble(const std::vector<config::RunSpec>& runs, const data::Dataset& data,
                                        const parallel::Comm& comm, const TrainHooks& hooks = {},
                                        const std::vector<const Checkpoint*>& resume = {},
                                        const std::vector<const NamedTensors*>& initial = {},
                                        int64_t pause_after_epoch = 0);

// Runs with the same non-empty key can be trained as one ensemble: every setting but the initialisation seed,
// learning rate, schedule (and its keys), momentum and weight decay (and the seed too where it orders mini-batches or
// picks validation rows). Empty for runs that train alone (train.engine autograd; optimizer lbfgs, whose line search
// asks for its own points).
std::string ensemble_key(const config::RunSpec& run);

}  // namespace gradfit::train
