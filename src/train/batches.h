#pragma once
// Which rows each step trains on: the rows held out for validation, each epoch's global batches, and a batch's
// rows gathered on this rank. Identical on any rank count: every choice depends on the global row index alone.
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "parallel/comm.h"
#include "parallel/shard.h"

namespace gradfit::train {

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
BatchPlan plan_batches(int64_t total_rows, int64_t batch_size, uint64_t seed, int64_t epoch,
                       const parallel::Shard& shard, const std::vector<uint8_t>& held_out = {});

// Rows of this rank's shard: points (B×n), gradient samples (B×n), values (B, or undefined without values), the
// rows' normalized weights (B, or undefined without a `weight` dataset); for the frames layout (Dataset::frames)
// x and grad_samples are undefined and `frames` holds the rows (B, int64, CPU: frames of the shard, whose atoms the
// engine reads from the dataset). An empty batch has undefined tensors.
struct Batch {
  torch::Tensor x, grad_samples, values, weights, frames;
  int64_t size() const { return frames.defined() ? frames.size(0) : x.defined() ? x.size(0) : 0; }
  // Its rows [first, first + count), as views.
  Batch rows(int64_t first, int64_t count) const;
};

// The rows of a run that are fixed for all its epochs: those held out for validation, and the global sizes and
// target norm that the metrics divide by.
struct DataSplit {
  std::vector<uint8_t> held_out;       // per global row (holdout_rows); empty without validation
  Batch validation;                    // this shard's validation rows, copied
  std::vector<int64_t> training_rows;  // with validation: this shard's training rows (relative to shard.begin)
  int64_t validation_count = 0;        // over all ranks
  int64_t train_count = 0;             // over all ranks
  double target_norm_sq = 0;           // ||S||^2 over all training rows (weighted), for the relative gradient error
  // n in the loss's grad_loss / (count × n) (train/engine.h): the data's n; for the frames layout 3 × the mean
  // atoms per frame over all training frames, so that the full batch's gradient term is the mean over its force
  // components, and a mini-batch's an unbiased estimate of it.
  double components_per_row = 0;
  bool has_validation() const { return !held_out.empty(); }
};
// Collective over `comm`. ||S||^2 is summed in float64 a chunk of `chunk_rows` rows at a time.
DataSplit split_rows(const data::Dataset& data, const config::TrainSpec& spec, int64_t chunk_rows,
                     const parallel::Comm& comm);

// The rows `local_rows` of this shard, copied.
Batch select_rows(const data::Dataset& data, const std::vector<int64_t>& local_rows);
// Every row of this shard, as a batch (no copy).
Batch whole_shard(const data::Dataset& data);

// An epoch's batches gathered into buffers allocated once: the rows of all its batches go to the device in one
// copy per epoch, and each step copies its members into the buffers. A plan that is the whole shard is the data
// itself; a plan that never changes (full batch, with validation rows left out) is gathered once.
class BatchGather {
 public:
  // `most_rows`: the most rows a batch can have on this rank.
  BatchGather(const data::Dataset& data, int64_t most_rows);
  // `whole_shard`: the plan is one batch of every row of the shard; `fixed`: every epoch's plan is this one.
  void start_epoch(const BatchPlan& plan, bool whole_shard, bool fixed);
  // Batch b of the epoch's plan (valid until the next call).
  Batch batch(size_t b);

 private:
  void gather(size_t b);

  const data::Dataset& data_;
  int64_t most_rows_;
  Batch buffers_;
  torch::Tensor index_, frames_index_;  // the plan's rows: on the data's device, and on the CPU for frames
  std::vector<int64_t> offsets_;
  bool whole_shard_ = false;
  int gathered_ = 0;
  bool allocated_ = false;
};

}  // namespace gradfit::train
