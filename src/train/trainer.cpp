#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

#include "common/error.h"
#include "parallel/grad_sync.h"
#include "model/analytic.h"
#include "model/loss.h"
#include "model/mlp.h"
#include "train/optimizer.h"

namespace gradfit::train {
namespace {

using Clock = std::chrono::steady_clock;

// Indices in [0, bound), from a generator whose output the C++ standard fixes (std::mt19937_64), with Lemire's
// multiply-shift, so the permutation is the same with any standard library.
uint64_t bounded(std::mt19937_64& rng, uint64_t bound) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(rng()) * bound) >> 64);
}

}  // namespace

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

BatchPlan plan_batches(int64_t total_rows, int64_t batch_size, uint64_t seed, int64_t epoch, const parallel::Shard& shard,
                       const std::vector<uint8_t>& held_out) {
  const auto training = [&](int64_t row) { return held_out.empty() || !held_out[row]; };
  BatchPlan plan;
  if (batch_size <= 0 || batch_size >= total_rows) {  // full batch: every local training row, in order
    plan.local_rows.emplace_back();
    for (int64_t i = 0; i < shard.count; ++i)
      if (training(shard.begin + i)) plan.local_rows[0].push_back(i);
    int64_t global = 0;
    for (int64_t row = 0; row < total_rows; ++row) global += training(row);
    plan.global_sizes.push_back(global);
    return plan;
  }
  std::vector<int64_t> order;
  order.reserve(total_rows);
  for (int64_t i = 0; i < total_rows; ++i)
    if (training(i)) order.push_back(i);
  const auto rows = static_cast<int64_t>(order.size());
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(epoch),
                    static_cast<uint32_t>(epoch >> 32)};
  std::mt19937_64 rng(seq);
  for (int64_t i = rows - 1; i > 0; --i) std::swap(order[i], order[bounded(rng, i + 1)]);

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

namespace {

// Rows of this shard selected by `local_rows`, or the whole shard when `all`.
struct Batch {
  torch::Tensor x, grad_samples, values;
  // Its rows [first, first + count), as views.
  Batch rows(int64_t first, int64_t count) const {
    return {x.narrow(0, first, count), grad_samples.narrow(0, first, count),
            values.defined() ? values.narrow(0, first, count) : torch::Tensor()};
  }
};
Batch select(const data::Dataset& data, const std::vector<int64_t>& local_rows, bool all) {
  if (all) return {data.x, data.grad_samples, data.values};
  const auto index = torch::tensor(local_rows, torch::kInt64).to(data.x.device());
  Batch b{data.x.index_select(0, index), data.grad_samples.index_select(0, index), torch::Tensor()};
  if (data.values.defined()) b.values = data.values.index_select(0, index);
  return b;
}

// An epoch's batches gathered into buffers allocated once: the rows of all its batches go to the device in one
// copy per epoch, and each step copies its members into the buffers. A plan that is the whole shard is the data
// itself; a plan that never changes (full batch, with validation rows left out) is gathered once.
class BatchGather {
 public:
  // `most_rows`: the most rows a batch can have on this rank.
  BatchGather(const data::Dataset& data, int64_t most_rows)
      : data_(data), most_rows_(std::min(most_rows, data.shard.count)) {}

  void start_epoch(const BatchPlan& plan, bool whole_shard, bool fixed) {
    whole_shard_ = whole_shard;
    if (whole_shard_ || (fixed && gathered_)) return;
    if (!buffers_.x.defined()) {  // allocated where needed only
      const auto& d = data_;
      buffers_ = {torch::empty({most_rows_, d.dim}, d.x.options()), torch::empty({most_rows_, d.dim}, d.x.options()),
                  d.values.defined() ? torch::empty({most_rows_}, d.values.options()) : torch::Tensor()};
    }
    std::vector<int64_t> rows;
    offsets_.assign(1, 0);
    for (const auto& batch : plan.local_rows) {
      rows.insert(rows.end(), batch.begin(), batch.end());
      offsets_.push_back(static_cast<int64_t>(rows.size()));
    }
    index_ = torch::tensor(rows, torch::kInt64).to(data_.x.device());
    gathered_ = fixed ? -1 : 0;  // -1: the one batch is already in the buffers
    if (fixed) gather(0);
  }

  Batch batch(size_t b) {
    if (whole_shard_) return {data_.x, data_.grad_samples, data_.values};
    if (gathered_ != -1) gather(b);
    const int64_t rows = offsets_[b + 1] - offsets_[b];
    return buffers_.rows(0, rows);
  }

 private:
  void gather(size_t b) {
    const int64_t first = offsets_[b], rows = offsets_[b + 1] - first;
    const auto index = index_.narrow(0, first, rows);
    auto x = buffers_.x.narrow(0, 0, rows), g = buffers_.grad_samples.narrow(0, 0, rows);
    at::index_select_out(x, data_.x, 0, index);
    at::index_select_out(g, data_.grad_samples, 0, index);
    if (data_.values.defined()) {
      auto v = buffers_.values.narrow(0, 0, rows);
      at::index_select_out(v, data_.values, 0, index);
    }
  }

  const data::Dataset& data_;
  int64_t most_rows_;
  Batch buffers_;
  torch::Tensor index_;
  std::vector<int64_t> offsets_;
  bool whole_shard_ = false;
  int gathered_ = 0;
};

}  // namespace

std::string ensemble_key(const config::RunSpec& run) {
  if (run.train.engine != config::Engine::analytic) return "";
  config::RunSpec key = run;
  key.optimizer.lr = 0;
  key.optimizer.momentum = 0;
  if (run.train.batch_size == 0 && run.train.val_fraction == 0) key.train.seed = 0;
  return config::canonical_text(key);
}

namespace {

// Each run's model, initialised from its own seed, its parameters stacked a run per row of one (R × P) tensor on
// the data's device. The first run's model keeps its parameters as views of row 0 (the autograd engine uses it).
struct Ensemble {
  model::Mlp first{nullptr};
  std::vector<std::string> names;     // of the parameters, in order
  torch::Tensor flat;                 // R × P
  std::vector<torch::Tensor> params;  // one per parameter, R × shape (model::ensemble_views)
};

Ensemble make_ensemble(const std::vector<config::RunSpec>& runs, const data::Dataset& data) {
  Ensemble e;
  std::vector<torch::Tensor> rows;
  for (const auto& run : runs) {
    auto model = model::make_mlp(run.model, data.dim, run.train.seed);
    std::vector<torch::Tensor> flat;
    for (const auto& p : model->parameters()) flat.push_back(p.detach().reshape(-1));
    rows.push_back(torch::cat(flat));
    if (e.first.is_empty()) e.first = model;
  }
  // Each row followed by a gap (kRowGap), as the optimizer's state: see FlatOptimizer.
  const int64_t models = static_cast<int64_t>(rows.size()), per_model = rows.front().numel();
  const int64_t gap = models == 1 ? 0 : kRowGap;
  e.flat = torch::zeros({models, per_model + gap}, data.x.options()).narrow(1, 0, per_model);
  e.flat.copy_(torch::stack(rows));
  for (const auto& item : e.first->named_parameters()) e.names.push_back(item.key());
  e.params = model::ensemble_views(e.flat, data.dim, runs.front().model.widths);
  torch::NoGradGuard no_grad;
  auto params = e.first->parameters();
  for (size_t i = 0; i < params.size(); ++i) params[i].set_data(e.params[i][0]);
  return e;
}

}  // namespace

TrainResult train(const config::RunSpec& run, const data::Dataset& data, const parallel::Comm& comm,
                  const TrainHooks& hooks, const Checkpoint* resume) {
  std::vector<const Checkpoint*> resumes;
  if (resume) resumes.push_back(resume);
  return train_ensemble({run}, data, comm, hooks, resumes).front();
}

std::vector<TrainResult> train_ensemble(const std::vector<config::RunSpec>& runs, const data::Dataset& data,
                                        const parallel::Comm& comm, const TrainHooks& hooks,
                                        const std::vector<const Checkpoint*>& resumes) {
  const auto start = Clock::now();
  const auto members = static_cast<int64_t>(runs.size());
  if (runs.empty()) return {};
  if (members > 1) {
    const std::string key = ensemble_key(runs.front());
    for (const auto& run : runs)
      if (key.empty() || ensemble_key(run) != key)
        throw Error("runs " + runs.front().name + " and " + run.name + " cannot be trained as one ensemble");
  }
  if (!resumes.empty() && static_cast<int64_t>(resumes.size()) != members)
    throw Error("an ensemble resumes with a checkpoint for every run or for none");
  const Checkpoint* resume = resumes.empty() ? nullptr : resumes.front();
  for (const Checkpoint* c : resumes)
    if (!c || c->epoch != resume->epoch || c->next_batch != resume->next_batch)
      throw Error("the checkpoints of one ensemble must be taken at the same step");
  const auto& spec = runs.front().train;  // the same for every run, less the seed where it only initialises
  const auto& widths = runs.front().model.widths;
  const bool use_analytic = spec.engine == config::Engine::analytic;

  Ensemble ensemble = make_ensemble(runs, data);
  const int64_t per_model = ensemble.flat.size(1);
  std::vector<config::OptimizerSpec> optimizer_specs;
  for (const auto& run : runs) optimizer_specs.push_back(run.optimizer);
  FlatOptimizer optimizer(optimizer_specs, ensemble.flat);
  if (resume) {
    torch::NoGradGuard no_grad;
    for (int64_t r = 0; r < members; ++r) {
      for (const auto& [name, tensor] : resumes[r]->parameters) {
        const auto it = std::find(ensemble.names.begin(), ensemble.names.end(), name);
        if (it == ensemble.names.end()) throw Error("checkpoint of run " + runs[r].name + " has no parameter " + name);
        ensemble.params[it - ensemble.names.begin()][r].copy_(tensor);
      }
      optimizer.load(resumes[r]->optimizer_state, data.x.device(), r);
    }
  }
  parallel::broadcast_parameters({ensemble.flat}, comm);
  const double value_weight = data.has_values() ? spec.value_weight : 0.0;

  // The validation rows of this shard, fixed for the run.
  const auto held_out = holdout_rows(data.total_rows, spec.val_fraction, spec.seed);
  std::vector<int64_t> val_rows;
  for (int64_t i = 0; i < data.shard.count && !held_out.empty(); ++i)
    if (held_out[data.shard.begin + i]) val_rows.push_back(i);
  const Batch val = held_out.empty() ? Batch{} : select(data, val_rows, false);
  int64_t val_count = 0;
  for (const uint8_t h : held_out) val_count += h;

  // Slots riding along with the gradients: each run's sums of squared gradient errors and of value errors in this
  // step (R × 2), then the requests to stop and to checkpoint, so that all ranks agree on them without another
  // collective.
  const int64_t stop_slot = 2 * members, checkpoint_slot = 2 * members + 1;
  auto model_params = ensemble.first->parameters();
  parallel::GradientAllreduce allreduce(use_analytic ? std::vector<torch::Tensor>{ensemble.flat} : model_params,
                                    2 * members + 2);
  const int64_t chunk_rows = spec.chunk_rows > 0
                                 ? spec.chunk_rows
                                 : model::default_chunk_rows(data.dim, widths, data.x.scalar_type(), data.x.device());
  const auto flat_gradients = allreduce.gradients().view({members, per_model});
  std::optional<model::AnalyticLoss> analytic;
  std::vector<torch::Tensor> gradient_views;
  if (use_analytic) {
    analytic.emplace(runs.front().model.activation, ensemble.params, chunk_rows);
    gradient_views = model::ensemble_views(flat_gradients, data.dim, widths);
  }
  const auto options = data.x.options();
  // Full batch: every epoch the same rows in the same order (plan_batches).
  const bool full_batch = spec.batch_size <= 0 || spec.batch_size >= data.total_rows;
  BatchGather gather(data, full_batch ? data.shard.count : spec.batch_size);
  const BatchPlan first_plan = plan_batches(data.total_rows, 0, spec.seed, 1, data.shard, held_out);
  const int64_t train_count = first_plan.global_sizes[0];
  // ||S||^2 over the training samples, for the relative error.
  double target_norm_sq = 0;
  {
    const auto samples = select(data, first_plan.local_rows[0], held_out.empty()).grad_samples;
    for (int64_t first = 0; first < samples.size(0); first += chunk_rows) {  // in float64, a chunk at a time
      const auto block = samples.narrow(0, first, std::min(chunk_rows, samples.size(0) - first));
      target_norm_sq += block.to(torch::kFloat64).pow(2).sum().item<double>();
    }
  }
  comm.allreduce_sum(&target_norm_sq, 1);
  const double n = static_cast<double>(data.dim);

  std::vector<TrainResult> results(members);
  std::vector<uint8_t> active(members, 1);
  std::vector<double> best_val(members, std::numeric_limits<double>::infinity());
  std::vector<int64_t> epochs_since_best(members, 0);
  for (auto& result : results) {
    result.chunk_rows = chunk_rows;
    result.parameter_count = per_model;
    result.ensemble = members;
  }
  int64_t first_epoch = 1, first_batch = 0;
  double earlier_seconds = 0, earlier_allreduce = 0;
  if (resume) {
    for (int64_t r = 0; r < members; ++r) {
      results[r].history = resumes[r]->history;
      best_val[r] = resumes[r]->best_val_loss;
      epochs_since_best[r] = resumes[r]->epochs_since_best;
    }
    first_epoch = resume->epoch;
    first_batch = resume->next_batch;
    earlier_seconds = resume->wall_seconds;
    earlier_allreduce = resume->allreduce_seconds;
  }
  const auto parameters_of = [&](int64_t r) {
    std::vector<std::pair<std::string, torch::Tensor>> named;
    for (size_t i = 0; i < ensemble.names.size(); ++i)
      named.emplace_back(ensemble.names[i], ensemble.params[i][r].detach().cpu().clone());
    return named;
  };
  // Run r's state after the last step, to continue at `next_batch` of `epoch`.
  const auto snapshot = [&](int64_t r, int64_t epoch, int64_t next_batch) {
    Checkpoint c;
    c.member = static_cast<size_t>(r);
    c.epoch = epoch;
    c.next_batch = next_batch;
    c.history = results[r].history;
    c.parameters = parameters_of(r);
    c.optimizer_state = optimizer.save(r);
    c.best_val_loss = best_val[r];
    c.epochs_since_best = epochs_since_best[r];
    c.wall_seconds = earlier_seconds + std::chrono::duration<double>(Clock::now() - start).count();
    c.allreduce_seconds = earlier_allreduce + allreduce.seconds();
    return c;
  };
  const auto finish = [&](int64_t r, records::RunStatus status) {
    results[r].status = status;
    results[r].parameters = parameters_of(r);
    active[r] = 0;
  };
  const auto any_active = [&] { return std::find(active.begin(), active.end(), 1) != active.end(); };
  bool stopping = false;
  for (int64_t epoch = first_epoch; epoch <= spec.epochs && !stopping && any_active(); ++epoch) {
    auto epoch_start = Clock::now();
    const BatchPlan plan = plan_batches(data.total_rows, spec.batch_size, spec.seed, epoch, data.shard, held_out);
    const bool whole_shard = plan.local_rows.size() == 1 && held_out.empty();
    gather.start_epoch(plan, whole_shard, /*fixed=*/full_batch);
    // Per run, summed over the epoch's batches (squared errors, R × 2) or maximised (gradient norm, R); read once
    // at epoch end.
    auto epoch_sums = torch::zeros({members, 2}, options);
    auto max_grad_norm = torch::zeros({members}, options);
    size_t b = 0;
    if (resume && epoch == first_epoch && first_batch > 0) {  // the rest of an epoch stopped in its middle
      b = static_cast<size_t>(first_batch);
      std::vector<double> partial_sums, partial_norms;
      for (const Checkpoint* c : resumes) {
        partial_sums.push_back(c->partial_grad_sse);
        partial_sums.push_back(c->partial_value_sse);
        partial_norms.push_back(c->partial_max_grad_norm);
      }
      epoch_sums.copy_(torch::tensor(partial_sums, torch::kFloat64).view({members, 2}));
      max_grad_norm.copy_(torch::tensor(partial_norms, torch::kFloat64));
      epoch_start -=
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(resume->partial_seconds));
    }
    bool checkpoint_now = false;
    for (; b < plan.local_rows.size(); ++b) {
      const auto& rows = plan.local_rows[b];
      const bool stop_flag = hooks.stop_requested && hooks.stop_requested();
      const bool checkpoint_flag = comm.is_root() && hooks.checkpoint_due && hooks.checkpoint_due();
      // The step's sums and the two requests ride in the allreduce buffer's extra slots.
      allreduce.zero();
      auto extras = allreduce.extras();
      auto sums = extras.narrow(0, 0, 2 * members).view({members, 2});
      if (stop_flag) extras[stop_slot].fill_(1);
      if (checkpoint_flag) extras[checkpoint_slot].fill_(1);
      if (!analytic)
        for (auto& p : model_params) p.mutable_grad().reset();
      if (!rows.empty()) {
        const Batch batch = gather.batch(b);
        if (analytic) {  // the gradients accumulate straight into the buffer
          analytic->accumulate(batch.x, batch.grad_samples, batch.values, value_weight, plan.global_sizes[b],
                               gradient_views, sums);
        } else {  // autograd (one run), chunk by chunk, its .grad accumulating
          for (int64_t first = 0; first < batch.x.size(0); first += chunk_rows) {
            const Batch chunk = batch.rows(first, std::min(chunk_rows, batch.x.size(0) - first));
            auto terms = model::gradient_matching_loss(ensemble.first, chunk.x, chunk.grad_samples, chunk.values,
                                                       value_weight, plan.global_sizes[b]);
            terms.loss.backward();
            sums[0][0].add_(terms.grad_sse);
            sums[0][1].add_(terms.value_sse);
          }
        }
      }
      if (!analytic) allreduce.gather_gradients();
      allreduce.reduce_in_place(comm);
      epoch_sums += sums;
      at::maximum_out(max_grad_norm, max_grad_norm,
                      at::linalg_vector_norm(flat_gradients, 2, at::IntArrayRef{1}, false, c10::nullopt));
      optimizer.step(flat_gradients);
      if (hooks.between_steps) hooks.between_steps();
      if (hooks.save_checkpoint) {  // on one rank its own flags are the group's: no need to read the sum back
        stopping = comm.size() == 1 ? stop_flag : allreduce.reduced_extra(stop_slot) > 0;
        checkpoint_now =
            stopping || (comm.size() == 1 ? checkpoint_flag : allreduce.reduced_extra(checkpoint_slot) > 0);
      }
      if (checkpoint_now && b + 1 < plan.local_rows.size()) {  // mid-epoch: save the epoch's partial sums too
        const auto partial = epoch_sums.to(torch::kFloat64).cpu();
        const auto partial_norm = max_grad_norm.to(torch::kFloat64).cpu();
        std::vector<Checkpoint> saved;
        for (int64_t r = 0; r < members; ++r) {
          if (!active[r]) continue;
          Checkpoint c = snapshot(r, epoch, static_cast<int64_t>(b + 1));
          c.partial_grad_sse = partial[r][0].item<double>();
          c.partial_value_sse = partial[r][1].item<double>();
          c.partial_max_grad_norm = partial_norm[r].item<double>();
          c.partial_seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
          saved.push_back(std::move(c));
        }
        hooks.save_checkpoint(saved);
        checkpoint_now = false;
        if (stopping) break;
      }
    }
    if (stopping && b + 1 < plan.local_rows.size()) break;  // stopped mid-epoch, state saved

    std::vector<double> val_sums(2 * members, 0.0);
    if (!held_out.empty()) {
      if (!val_rows.empty()) {
        auto sums = torch::zeros({members, 2}, options);
        if (analytic) {
          analytic->evaluate(val.x, val.grad_samples, val.values, value_weight, sums);
        } else {
          for (int64_t first = 0; first < val.x.size(0); first += chunk_rows) {
            const Batch chunk = val.rows(first, std::min(chunk_rows, val.x.size(0) - first));
            const auto terms = model::gradient_matching_loss(ensemble.first, chunk.x, chunk.grad_samples, chunk.values,
                                                             value_weight, val_count, /*create_graph=*/false);
            sums[0][0].add_(terms.grad_sse);
            sums[0][1].add_(terms.value_sse);
          }
        }
        const auto host = sums.to(torch::kFloat64).cpu().contiguous();
        std::copy_n(host.data_ptr<double>(), 2 * members, val_sums.begin());
      }
      comm.allreduce_sum(val_sums.data(), 2 * members);
    }
    const auto sums = epoch_sums.to(torch::kFloat64).cpu().contiguous();
    const auto norms = max_grad_norm.to(torch::kFloat64).cpu().contiguous();
    const double seconds = std::chrono::duration<double>(Clock::now() - epoch_start).count();
    for (int64_t r = 0; r < members; ++r) {
      if (!active[r]) continue;
      EpochRecord record;
      record.epoch = epoch;
      record.val_loss = std::numeric_limits<double>::quiet_NaN();
      if (!held_out.empty())
        record.val_loss = val_sums[2 * r] / (static_cast<double>(val_count) * n) +
                          value_weight * val_sums[2 * r + 1] / static_cast<double>(val_count);
      const double grad_sse = sums.data_ptr<double>()[2 * r];
      const double value_sse = sums.data_ptr<double>()[2 * r + 1];
      record.train_loss = grad_sse / (static_cast<double>(train_count) * n) +
                          value_weight * value_sse / static_cast<double>(train_count);
      record.rel_grad_error = target_norm_sq > 0 ? std::sqrt(grad_sse / target_norm_sq) : std::sqrt(grad_sse);
      record.grad_norm = norms.data_ptr<double>()[r];
      record.seconds = seconds;
      results[r].history.push_back(record);
      if (hooks.on_epoch) hooks.on_epoch(static_cast<size_t>(r), record);
      // Every rank sees the same reduced numbers, so all ranks stop together.
      if (!std::isfinite(record.train_loss) || !std::isfinite(record.grad_norm) ||
          (!held_out.empty() && !std::isfinite(record.val_loss))) {
        finish(r, records::RunStatus::diverged);
        continue;
      }
      if (spec.patience > 0) {
        if (record.val_loss < best_val[r]) {
          best_val[r] = record.val_loss;
          epochs_since_best[r] = 0;
        } else if (++epochs_since_best[r] >= spec.patience) {
          finish(r, records::RunStatus::early_stopped);
        }
      }
    }
    if (epoch == spec.epochs) break;  // finished: nothing left to checkpoint or interrupt
    if (checkpoint_now) {             // at the epoch boundary: the next epoch starts from its first batch
      std::vector<Checkpoint> saved;
      for (int64_t r = 0; r < members; ++r)
        if (active[r]) saved.push_back(snapshot(r, epoch + 1, 0));
      if (!saved.empty()) hooks.save_checkpoint(saved);
    }
  }
  const double wall = earlier_seconds + std::chrono::duration<double>(Clock::now() - start).count();
  for (int64_t r = 0; r < members; ++r) {
    auto& result = results[r];
    if (active[r]) {
      const bool unfinished = static_cast<int64_t>(result.history.size()) < spec.epochs;
      finish(r, stopping && unfinished ? records::RunStatus::interrupted : records::RunStatus::done);
    }
    result.wall_seconds = wall;
    result.allreduce_seconds = earlier_allreduce + allreduce.seconds();
  }
  return results;
}

}  // namespace gradfit::train
