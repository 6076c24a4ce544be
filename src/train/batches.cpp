#include "train/batches.h"

#include <algorithm>
#include <random>

namespace gradfit::train {
namespace {

// Indices in [0, bound), from a generator whose output the C++ standard fixes (std::mt19937_64), with Lemire's
// multiply-shift, so the permutation is the same with any standard library.
uint64_t bounded(std::mt19937_64& rng, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * bound) >> 64);
}

// A full batch: every local training row, in order.
BatchPlan full_batch_plan(int64_t total_rows, const parallel::Shard& shard, const std::vector<uint8_t>& held_out) {
  const auto training = [&](int64_t row) { return held_out.empty() || !held_out[row]; };
  BatchPlan plan;
  plan.local_rows.emplace_back();
  for (int64_t i = 0; i < shard.count; ++i)
    if (training(shard.begin + i)) plan.local_rows[0].push_back(i);
  int64_t global = 0;
  for (int64_t row = 0; row < total_rows; ++row) global += training(row);
  plan.global_sizes.push_back(global);
  return plan;
}

// The frames layout: ||S||² and the atoms over the training frames `rows` of this shard (float64), summed over
// the ranks, and n̄ = 3 × the atoms per training frame.
void add_frames_norm(const data::Dataset& data, const std::vector<int64_t>& rows, DataSplit& split,
                     const parallel::Comm& comm) {
  const data::Frames& frames = *data.frames;
  std::vector<size_t> first_atom(frames.atoms.size() + 1, 0);
  for (size_t f = 0; f < frames.atoms.size(); ++f) first_atom[f + 1] = first_atom[f] + frames.atoms[f];
  double sums[2] = {0, 0};  // ||S||², atoms
  for (const int64_t f : rows) {
    const auto frame = static_cast<size_t>(f);
    for (size_t k = 3 * first_atom[frame]; k < 3 * first_atom[frame + 1]; ++k)
      sums[0] += frames.grad[k] * frames.grad[k];
    sums[1] += static_cast<double>(frames.atoms[frame]);
  }
  comm.allreduce_sum(sums, 2);
  split.target_norm_sq = sums[0];
  split.components_per_row = split.train_count > 0 ? 3 * sums[1] / static_cast<double>(split.train_count) : 3.0;
}

}  // namespace

Batch whole_shard(const data::Dataset& data) {
  return {data.x, data.grad_samples, data.values, data.weights, data.frame_rows};
}

Batch select_rows(const data::Dataset& data, const std::vector<int64_t>& local_rows) {
  const auto rows = torch::tensor(local_rows, torch::kInt64);
  const auto index = rows.to(data.options().device());
  Batch b;
  if (data.is_frames()) {
    b.frames = data.frame_rows.index_select(0, rows);
  } else {
    b.x = data.x.index_select(0, index);
    b.grad_samples = data.grad_samples.index_select(0, index);
  }
  if (data.values.defined()) b.values = data.values.index_select(0, index);
  if (data.weights.defined()) b.weights = data.weights.index_select(0, index);
  return b;
}

std::vector<uint8_t> holdout_rows(int64_t total_rows, double fraction, uint64_t seed) {
  std::vector<uint8_t> held_out;
  if (fraction <= 0) return held_out;
  held_out.resize(total_rows);
  const auto threshold = static_cast<uint64_t>(fraction * 18446744073709551616.0);  // fraction * 2^64
  for (int64_t i = 0; i < total_rows; ++i) {
    uint64_t z = seed * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(i) + 0x632be59bd9b4e019ULL;  // SplitMix64
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    held_out[i] = (z ^ (z >> 31)) < threshold;
  }
  return held_out;
}

BatchPlan plan_batches(int64_t total_rows, int64_t batch_size, uint64_t seed, int64_t epoch,
                       const parallel::Shard& shard, const std::vector<uint8_t>& held_out) {
  if (batch_size <= 0 || batch_size >= total_rows) return full_batch_plan(total_rows, shard, held_out);
  std::vector<int64_t> order;
  order.reserve(total_rows);
  for (int64_t i = 0; i < total_rows; ++i)
    if (held_out.empty() || !held_out[i]) order.push_back(i);
  const auto rows = static_cast<int64_t>(order.size());
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(epoch),
                    static_cast<uint32_t>(epoch >> 32)};
  std::mt19937_64 rng(seq);
  for (int64_t i = rows - 1; i > 0; --i) std::swap(order[i], order[bounded(rng, i + 1)]);

  BatchPlan plan;
  const int64_t batches = (rows + batch_size - 1) / batch_size;
  plan.local_rows.resize(batches);
  plan.global_sizes.resize(batches);
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t first = b * batch_size;
    const int64_t last = std::min(rows, first + batch_size);
    plan.global_sizes[b] = last - first;
    for (int64_t k = first; k < last; ++k)
      if (order[k] >= shard.begin && order[k] < shard.end()) plan.local_rows[b].push_back(order[k] - shard.begin);
  }
  return plan;
}

Batch Batch::rows(int64_t first, int64_t count) const {
  const auto part = [&](const torch::Tensor& t) { return t.defined() ? t.narrow(0, first, count) : torch::Tensor(); };
  return {part(x), part(grad_samples), part(values), part(weights), part(frames)};
}

DataSplit split_rows(const data::Dataset& data, const config::TrainSpec& spec, int64_t chunk_rows,
                     const parallel::Comm& comm) {
  DataSplit split;
  split.held_out = holdout_rows(data.total_rows, spec.val_fraction, spec.seed);
  if (split.has_validation()) {
    std::vector<int64_t> val_rows;
    for (int64_t i = 0; i < data.shard.count; ++i)
      if (split.held_out[data.shard.begin + i]) val_rows.push_back(i);
    split.validation = select_rows(data, val_rows);
    for (const uint8_t h : split.held_out) split.validation_count += h;
  }
  const BatchPlan plan = full_batch_plan(data.total_rows, data.shard, split.held_out);
  split.train_count = plan.global_sizes[0];
  if (split.has_validation()) split.training_rows = plan.local_rows[0];
  if (data.is_frames()) {
    add_frames_norm(data, plan.local_rows[0], split, comm);
    return split;
  }
  split.components_per_row = static_cast<double>(data.dim);
  const Batch samples = split.has_validation() ? select_rows(data, plan.local_rows[0]) : whole_shard(data);
  for (int64_t first = 0; first < samples.size(); first += chunk_rows) {  // in float64, a chunk at a time
    const Batch block = samples.rows(first, std::min(chunk_rows, samples.size() - first));
    auto squares = block.grad_samples.to(torch::kFloat64).pow(2);
    if (block.weights.defined()) squares.mul_(block.weights.to(torch::kFloat64).unsqueeze(1));
    split.target_norm_sq += squares.sum().item<double>();
  }
  comm.allreduce_sum(&split.target_norm_sq, 1);
  return split;
}

BatchGather::BatchGather(const data::Dataset& data, int64_t most_rows)
    : data_(data), most_rows_(std::min(most_rows, data.shard.count)) {}

void BatchGather::start_epoch(const BatchPlan& plan, bool whole_shard, bool fixed) {
  whole_shard_ = whole_shard;
  if (whole_shard_ || (fixed && gathered_)) return;
  if (!allocated_) {  // allocated where needed only
    const auto like = [&](const torch::Tensor& t) {
      if (!t.defined()) return torch::Tensor();
      auto shape = t.sizes().vec();
      shape[0] = most_rows_;
      return torch::empty(shape, t.options());
    };
    const Batch all = train::whole_shard(data_);
    buffers_ = {like(all.x), like(all.grad_samples), like(all.values), like(all.weights), like(all.frames)};
    allocated_ = true;
  }
  std::vector<int64_t> rows;
  offsets_.assign(1, 0);
  for (const auto& batch : plan.local_rows) {
    rows.insert(rows.end(), batch.begin(), batch.end());
    offsets_.push_back(static_cast<int64_t>(rows.size()));
  }
  frames_index_ = torch::tensor(rows, torch::kInt64);
  index_ = frames_index_.to(data_.options().device());
  gathered_ = fixed ? -1 : 0;  // -1: the one batch is already in the buffers
  if (fixed) gather(0);
}

Batch BatchGather::batch(size_t b) {
  if (whole_shard_) return whole_shard(data_);
  if (gathered_ != -1) gather(b);
  const int64_t rows = offsets_[b + 1] - offsets_[b];
  return buffers_.rows(0, rows);
}

void BatchGather::gather(size_t b) {
  const int64_t first = offsets_[b], rows = offsets_[b + 1] - first;
  const auto index = index_.narrow(0, first, rows);
  const Batch all = whole_shard(data_);
  const auto select = [&](torch::Tensor& buffer, const torch::Tensor& source, const torch::Tensor& at) {
    if (!source.defined()) return;
    auto out = buffer.narrow(0, 0, rows);
    at::index_select_out(out, source, 0, at);
  };
  select(buffers_.x, all.x, index);
  select(buffers_.grad_samples, all.grad_samples, index);
  select(buffers_.values, all.values, index);
  select(buffers_.weights, all.weights, index);
  select(buffers_.frames, all.frames, frames_index_.narrow(0, first, rows));
}

}  // namespace gradfit::train
