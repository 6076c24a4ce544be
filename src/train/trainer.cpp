#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>

#include "common/error.h"
#include "model/analytic.h"
#include "model/frame_descriptor.h"
#include "model/standardization.h"
#include "parallel/agree.h"
#include "parallel/grad_sync.h"
#include "parallel/shard.h"
#include "train/engine.h"
#include "train/optimizer.h"
#include "train/weights.h"

namespace gradfit::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The runs of one job must be able to train together, and resume from checkpoints taken at one step.
void check_job(const std::vector<config::RunSpec>& runs, const std::vector<const Checkpoint*>& resumes) {
  if (runs.size() > 1) {
    const std::string key = ensemble_key(runs.front());
    for (const auto& run : runs)
      if (key.empty() || ensemble_key(run) != key)
        throw Error("runs " + runs.front().name + " and " + run.name + " cannot be trained as one ensemble");
  }
  if (!resumes.empty() && resumes.size() != runs.size())
    throw Error("an ensemble resumes with a checkpoint for every run or for none");
  for (const Checkpoint* c : resumes)
    if (!c || c->epoch != resumes.front()->epoch || c->next_batch != resumes.front()->next_batch)
      throw Error("the checkpoints of one ensemble must be taken at the same step");
}

// Where each reduction block (parallel/shard.h) starts among a batch's rows (`local_rows`, relative to
// `shard_begin`, ascending), then the end of the last one.
std::vector<int64_t> block_bounds(const std::vector<int64_t>& local_rows, int64_t shard_begin, int64_t block_rows) {
  std::vector<int64_t> bounds;
  int64_t block = -1;
  for (size_t i = 0; i < local_rows.size(); ++i) {
    const int64_t b = (shard_begin + local_rows[i]) / block_rows;
    if (b != block) bounds.push_back(static_cast<int64_t>(i));
    block = b;
  }
  bounds.push_back(static_cast<int64_t>(local_rows.size()));
  return bounds;
}

// An epoch in progress: per run, its loss sums over the batches so far (R × kSums, engine.h) and the largest
// gradient norm (R), on the device, read once at the epoch's end.
struct EpochProgress {
  torch::Tensor sums, max_grad_norm;
  size_t first_batch = 0;  // where this invocation starts it
  Clock::time_point start;
};

// The allreduce buffer's extra slots after the gradients: each run's step sums (R × kSums), then the requests to stop
// and to checkpoint, so that all ranks agree on them without another collective.
struct Slots {
  int64_t runs;
  int64_t count() const { return kSums * runs + 2; }
  int64_t stop() const { return kSums * runs; }
  int64_t checkpoint() const { return kSums * runs + 1; }
};

// The loop of one job (a run, or an ensemble) on one rank group: epochs -> batches -> steps, each run's records
// and stopping, and checkpoints. Every rank of the group builds one and calls run().
class EnsembleTrainer {
 public:
  EnsembleTrainer(const std::vector<config::RunSpec>& runs, const data::Dataset& data, const parallel::Comm& comm,
                  const TrainHooks& hooks, const std::vector<const Checkpoint*>& resumes,
                  const std::vector<const NamedTensors*>& initial, int64_t pause_after_epoch);
  std::vector<TrainResult> run();

 private:
  void resume_from(const std::vector<const Checkpoint*>& resumes);
  EpochProgress start_epoch(int64_t epoch);
  bool run_batches(int64_t epoch, EpochProgress& progress);  // false: stopped mid-epoch, its state saved
  void step(const BatchPlan& plan, size_t b, EpochProgress& progress);
  void read_requests(bool stop_flag, bool checkpoint_flag);
  void agree_on_requests(bool stop_flag, bool checkpoint_flag);
  void gradient_pass(const Batch& batch, int64_t count);
  bool restore_lbfgs_end();
  void iterate_lbfgs(const Batch& batch, int64_t count);
  Lbfgs::Evaluation evaluation(int64_t count) const;
  void record_epoch(int64_t epoch, const EpochProgress& progress);
  std::vector<double> validation_sums();
  double mean_loss(const double* sums, int64_t count) const;
  void update_stopping(RunState& run, const EpochRecord& record);
  void end_run(RunState& run, records::RunStatus status);
  void evaluate_saved();
  std::vector<double> saved_sums();
  void save_checkpoints(int64_t epoch, int64_t next_batch, const EpochProgress* partial);
  bool any_active() const;
  std::vector<TrainResult> finish();

  const std::vector<config::RunSpec>& runs_;
  const config::TrainSpec& spec_;  // the same for every run, less the seed where it only initialises
  const data::Dataset& data_;
  const parallel::Comm& comm_;
  const TrainHooks& hooks_;
  const Clock::time_point start_ = Clock::now();
  const int64_t members_;
  const Slots slots_;
  const double value_weight_;
  const int64_t chunk_rows_;
  const bool full_batch_;     // every epoch the same rows in the same order (plan_batches)
  const int64_t last_epoch_;  // this job's last epoch: train.epochs, or where it pauses
  Weights weights_;
  FlatOptimizer optimizer_;
  parallel::GradientAllreduce allreduce_;
  torch::Tensor flat_gradients_;  // R × P, in the allreduce buffer
  torch::Tensor step_sums_;       // R × kSums, the buffer's first extra slots
  std::unique_ptr<Engine> engine_;
  DataSplit split_;
  BatchGather gather_;
  std::vector<RunState> states_;
  int64_t first_epoch_ = 1, first_batch_ = 0;  // where this invocation starts
  std::vector<const Checkpoint*> resumes_;     // one per run, or none for a fresh start
  std::vector<int64_t> lbfgs_blocks_;          // L-BFGS: the (full) batch cut at the reduction blocks (block_bounds)
  Lbfgs::Evaluation lbfgs_end_;                // L-BFGS: the evaluation where the last iteration left the weights,
  torch::Tensor lbfgs_end_weights_;            // and those weights
  double earlier_seconds_ = 0, earlier_allreduce_ = 0;
  bool stopping_ = false, checkpoint_now_ = false;  // the group's requests, as of the last step
};

std::vector<config::OptimizerSpec> optimizer_specs(const std::vector<config::RunSpec>& runs) {
  std::vector<config::OptimizerSpec> specs;
  for (const auto& run : runs) specs.push_back(run.optimizer);
  return specs;
}

// The parameters at the end of each flat row that get no gradient: the output bias (the last one, after the output
// weights) when the loss has no value term, since dV/dx does not depend on it.
int64_t gradient_free_parameters(double value_weight) {
  return value_weight > 0 ? 0 : 1;
}

// Rows per chunk: frames (of the fixed layout), or atoms of the frames layout (each element network's rows).
int64_t chunk_rows_for(const config::RunSpec& run, const data::Dataset& data) {
  if (run.train.chunk_rows > 0) return run.train.chunk_rows;
  const int64_t inputs = data.is_frames() ? model::descriptor::FrameDescriptor::width_of(
                                                run.model.descriptor, static_cast<int64_t>(data.numbers.size()))
                                          : model::feature_dim(run.model, data.dim);
  return model::default_chunk_rows(inputs, model::network_shape(run.model, data.dim).widest(),
                                   data.options().dtype().toScalarType(), data.options().device());
}

EnsembleTrainer::EnsembleTrainer(const std::vector<config::RunSpec>& runs, const data::Dataset& data,
                                 const parallel::Comm& comm, const TrainHooks& hooks,
                                 const std::vector<const Checkpoint*>& resumes,
                                 const std::vector<const NamedTensors*>& initial, int64_t pause_after_epoch)
    : runs_(runs),
      spec_(runs.front().train),
      data_(data),
      comm_(comm),
      hooks_(hooks),
      members_(static_cast<int64_t>(runs.size())),
      slots_{members_},
      value_weight_(data.has_values() ? spec_.value_weight : 0.0),
      chunk_rows_(chunk_rows_for(runs.front(), data)),
      full_batch_(spec_.batch_size <= 0 || spec_.batch_size >= data.total_rows),
      last_epoch_(pause_after_epoch > 0 ? std::min(pause_after_epoch, spec_.epochs) : spec_.epochs),
      weights_(make_weights(runs, data.dim, data.options())),
      optimizer_(optimizer_specs(runs), weights_.flat, gradient_free_parameters(value_weight_)),
      allreduce_(spec_.engine == config::Engine::analytic ? std::vector<torch::Tensor>{weights_.flat}
                                                          : weights_.first->parameters(),
                 slots_.count()),
      gather_(data, full_batch_ ? data.shard.count : spec_.batch_size) {
  // Every rank reads the same files, so every rank fails here alike: one shared error, not one per rank.
  parallel::all_or_none(comm_, true, [&] {
    for (size_t r = 0; r < initial.size(); ++r)  // a warm start
      if (initial[r]) set_weights(weights_, static_cast<int64_t>(r), *initial[r], "train.init_from " + spec_.init_from);
    resume_from(resumes);
  });
  parallel::broadcast_parameters({weights_.flat}, comm_);
  if (weights_.ema.defined() && resumes.empty()) weights_.ema.copy_(weights_.flat);  // from the initial weights
  flat_gradients_ = allreduce_.gradients().view({members_, weights_.flat.size(1)});
  step_sums_ = allreduce_.extras().narrow(0, 0, kSums * members_).view({members_, kSums});
  // data.standardize with features scales φ (model/standardization.h): both engines see the same scaled features.
  const model::Features features = model::features_for(runs.front().model, data.dim, data.standardization);
  weights_.first->set_features(features);
  split_ = split_rows(data, spec_, chunk_rows_, comm_);
  engine_ = data.is_frames()
                ? make_frames_engine(runs.front(), weights_, allreduce_, data, chunk_rows_, split_.components_per_row,
                                     value_weight_)
                : make_engine(spec_.engine, runs.front(), weights_, allreduce_, features, chunk_rows_, value_weight_);
}

void EnsembleTrainer::resume_from(const std::vector<const Checkpoint*>& resumes) {
  for (int64_t r = 0; r < members_; ++r) {
    RunState state;
    state.member = r;
    state.result.chunk_rows = chunk_rows_;
    state.result.parameter_count = weights_.flat.size(1);
    state.result.ensemble = members_;
    state.schedule = LrSchedule(runs_[r].optimizer, spec_.epochs);
    if (!resumes.empty()) restore(state, weights_, optimizer_, *resumes[r], runs_[r].name);
    states_.push_back(std::move(state));
  }
  resumes_ = resumes;
  if (resumes.empty()) return;
  first_epoch_ = resumes.front()->epoch;
  first_batch_ = resumes.front()->next_batch;
  earlier_seconds_ = resumes.front()->wall_seconds;
  earlier_allreduce_ = resumes.front()->allreduce_seconds;
}

std::vector<TrainResult> EnsembleTrainer::run() {
  for (int64_t epoch = first_epoch_; epoch <= last_epoch_ && !stopping_ && any_active(); ++epoch) {
    EpochProgress progress = start_epoch(epoch);
    if (!run_batches(epoch, progress)) break;
    record_epoch(epoch, progress);
    if (epoch == spec_.epochs) break;  // finished: nothing left to checkpoint
    // The next epoch starts from its first batch; a pause always leaves the checkpoint to continue from.
    if (checkpoint_now_ || epoch == last_epoch_) save_checkpoints(epoch + 1, 0, nullptr);
  }
  return finish();
}

// The epoch's sums start at zero, or where a checkpoint taken in its middle left them; each run's rate is its
// schedule's.
EpochProgress EnsembleTrainer::start_epoch(int64_t epoch) {
  std::vector<double> lr;
  for (const auto& state : states_) lr.push_back(state.schedule.lr());
  optimizer_.set_lr(lr);
  EpochProgress p;
  p.start = Clock::now();
  p.sums = torch::zeros({members_, kSums}, data_.options());
  p.max_grad_norm = torch::zeros({members_}, data_.options());
  if (resumes_.empty() || epoch != first_epoch_ || first_batch_ == 0) return p;
  p.first_batch = static_cast<size_t>(first_batch_);
  std::vector<double> partial_sums, partial_norms;
  for (const Checkpoint* c : resumes_) {
    partial_sums.push_back(c->partial_grad_sse);
    partial_sums.push_back(c->partial_value_sse);
    partial_sums.push_back(c->partial_grad_loss);
    partial_norms.push_back(c->partial_max_grad_norm);
  }
  p.sums.copy_(torch::tensor(partial_sums, torch::kFloat64).view({members_, kSums}));
  p.max_grad_norm.copy_(torch::tensor(partial_norms, torch::kFloat64));
  p.start -= std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(resumes_[0]->partial_seconds));
  return p;
}

bool EnsembleTrainer::run_batches(int64_t epoch, EpochProgress& progress) {
  const BatchPlan plan =
      plan_batches(data_.total_rows, spec_.batch_size, spec_.seed, epoch, data_.shard, split_.held_out);
  const size_t batches = plan.local_rows.size();
  gather_.start_epoch(plan, /*whole_shard=*/batches == 1 && !split_.has_validation(), /*fixed=*/full_batch_);
  for (size_t b = progress.first_batch; b < batches; ++b) {
    step(plan, b, progress);
    if (checkpoint_now_ && b + 1 < batches) {  // mid-epoch: the epoch's partial sums are saved too
      save_checkpoints(epoch, static_cast<int64_t>(b + 1), &progress);
      checkpoint_now_ = false;
      if (stopping_) return false;
    }
  }
  return true;
}

// One optimizer step of every run on global batch b: this rank's gradient and sums, the requests to stop and to
// checkpoint, all in one allreduce; then the same step on every rank.
void EnsembleTrainer::step(const BatchPlan& plan, size_t b, EpochProgress& progress) {
  const bool stop_flag = hooks_.stop_requested && hooks_.stop_requested();
  const bool checkpoint_flag = comm_.is_root() && hooks_.checkpoint_due && hooks_.checkpoint_due();
  allreduce_.zero();
  auto extras = allreduce_.extras();
  if (stop_flag) extras[slots_.stop()].fill_(1);
  if (checkpoint_flag) extras[slots_.checkpoint()].fill_(1);
  const Batch batch = plan.local_rows[b].empty() ? Batch{} : gather_.batch(b);
  if (optimizer_.is_lbfgs() && lbfgs_blocks_.empty())  // full batch: the same rows every epoch
    lbfgs_blocks_ =
        block_bounds(plan.local_rows[b], data_.shard.begin, parallel::reduction_block_rows(data_.total_rows));
  const bool restored = optimizer_.is_lbfgs() && restore_lbfgs_end();
  if (!restored) gradient_pass(batch, plan.global_sizes[b]);
  progress.sums += step_sums_;
  at::maximum_out(progress.max_grad_norm, progress.max_grad_norm,
                  at::linalg_vector_norm(flat_gradients_, 2, at::IntArrayRef{1}, false, c10::nullopt));
  if (restored)
    agree_on_requests(stop_flag, checkpoint_flag);
  else
    read_requests(stop_flag, checkpoint_flag);  // before L-BFGS's evaluations reuse the buffer
  if (optimizer_.is_lbfgs())
    iterate_lbfgs(batch, plan.global_sizes[b]);
  else
    optimizer_.step(flat_gradients_);
  if (weights_.ema.defined()) update_ema(weights_, spec_.ema_decay);
  if (hooks_.between_steps) hooks_.between_steps();
}

// This rank's part of the gradient and the sums on `batch` (global size `count`), summed over the group into the
// allreduce buffer. L-BFGS sums them block by block, compensated (GradientAllreduce::add_block), so that its
// evaluations, and with them the line search's branches, are the same numbers on any rank count.
void EnsembleTrainer::gradient_pass(const Batch& batch, int64_t count) {
  if (!optimizer_.is_lbfgs()) {
    engine_->accumulate(batch, count, step_sums_);
    allreduce_.reduce_in_place(comm_);
    return;
  }
  for (size_t k = 0; k + 1 < lbfgs_blocks_.size(); ++k) {
    engine_->accumulate(batch.rows(lbfgs_blocks_[k], lbfgs_blocks_[k + 1] - lbfgs_blocks_[k]), count, step_sums_);
    allreduce_.add_block();
  }
  allreduce_.reduce_compensated(comm_);
}

// L-BFGS: where the weights are still those the last iteration left (on every rank alike), its line search's
// evaluation there goes back into the buffer instead of a new pass: the same numbers, since the pass is
// deterministic and its sums do not depend on the ranks (gradient_pass), so the iterates stay PyTorch's, whose
// LBFGS.step evaluates there again. Full batch only, so the batch is the same. False where there is none (the
// job's first step, a resume) and the step must pass over the batch.
bool EnsembleTrainer::restore_lbfgs_end() {
  const bool usable = lbfgs_end_.grad.defined() && torch::equal(weights_.flat[0], lbfgs_end_weights_);
  if (usable) {
    flat_gradients_[0].copy_(lbfgs_end_.grad);
    step_sums_.copy_(lbfgs_end_.extra);
  }
  lbfgs_end_ = {};
  return usable;
}

// One L-BFGS iteration of the (only) run. Its first evaluation is the step's pass above (or the last iteration's
// end, restored); each further one (the line search's trial points) is a pass over this rank's rows of the batch and
// one allreduce, so every rank makes the same number of them. The epoch's record keeps the first: the loss at the
// iteration's start.
void EnsembleTrainer::iterate_lbfgs(const Batch& batch, int64_t count) {
  const auto evaluate = [this, &batch, count] {
    allreduce_.zero();
    gradient_pass(batch, count);
    return evaluation(count);
  };
  lbfgs_end_ = optimizer_.iterate(evaluation(count), evaluate);
  if (lbfgs_end_weights_.defined())
    lbfgs_end_weights_.copy_(weights_.flat[0]);
  else
    lbfgs_end_weights_ = weights_.flat[0].clone();
}

// The loss, flat gradient and step sums of the only run, as the last allreduce left them (copied out of it).
Lbfgs::Evaluation EnsembleTrainer::evaluation(int64_t count) const {
  const auto sums = step_sums_[0].to(torch::kFloat64).cpu().contiguous();
  const double* s = sums.data_ptr<double>();
  return {mean_loss(s, count), flat_gradients_[0].clone(), step_sums_.clone()};
}

// As read_requests(), for a step that made no allreduce: the two requests summed on their own.
void EnsembleTrainer::agree_on_requests(bool stop_flag, bool checkpoint_flag) {
  if (!hooks_.stop_requested && !hooks_.checkpoint_due) return;
  double flags[2] = {stop_flag ? 1. : 0., checkpoint_flag ? 1. : 0.};
  if (comm_.size() > 1) comm_.allreduce_sum(flags, 2);
  stopping_ = flags[0] > 0;
  checkpoint_now_ = stopping_ || flags[1] > 0;
}

void EnsembleTrainer::read_requests(bool stop_flag, bool checkpoint_flag) {
  if (!hooks_.stop_requested && !hooks_.checkpoint_due) return;  // nobody can ask: nothing to read back
  // On one rank its own flags are the group's: no need to read the sum back.
  const bool single = comm_.size() == 1;
  stopping_ = single ? stop_flag : allreduce_.reduced_extra(slots_.stop()) > 0;
  checkpoint_now_ = stopping_ || (single ? checkpoint_flag : allreduce_.reduced_extra(slots_.checkpoint()) > 0);
}

// Each active run's record of the epoch (identical on every rank), then its stopping.
void EnsembleTrainer::record_epoch(int64_t epoch, const EpochProgress& progress) {
  const std::vector<double> val_sums = validation_sums();
  const auto sums = progress.sums.to(torch::kFloat64).cpu().contiguous();
  const auto norms = progress.max_grad_norm.to(torch::kFloat64).cpu().contiguous();
  const double seconds = seconds_since(progress.start);
  for (auto& state : states_) {
    if (!state.active) continue;
    const int64_t r = state.member;
    EpochRecord record;
    record.epoch = epoch;
    record.val_loss = split_.has_validation() ? mean_loss(&val_sums[kSums * r], split_.validation_count)
                                              : std::numeric_limits<double>::quiet_NaN();
    const double grad_sse = sums.data_ptr<double>()[kSums * r + kGradSse];
    record.train_loss = mean_loss(sums.data_ptr<double>() + kSums * r, split_.train_count);
    record.rel_grad_error =
        split_.target_norm_sq > 0 ? std::sqrt(grad_sse / split_.target_norm_sq) : std::sqrt(grad_sse);
    record.grad_norm = norms.data_ptr<double>()[r];
    record.seconds = seconds;
    record.lr = state.schedule.lr();
    state.result.history.push_back(record);
    if (hooks_.on_epoch) hooks_.on_epoch(static_cast<size_t>(r), record);
    update_stopping(state, record);
    state.schedule.step(split_.has_validation() ? record.val_loss : record.train_loss);  // plateau's loss
  }
}

// Per run, the validation rows' sums over all ranks (R × kSums, flat); zeros without validation.
std::vector<double> EnsembleTrainer::validation_sums() {
  std::vector<double> val_sums(kSums * members_, 0.0);
  if (!split_.has_validation()) return val_sums;
  if (split_.validation.size() > 0) {
    const JudgedWeightsInPlace judged_weights(weights_);  // validation judges the moving average
    auto sums = torch::zeros({members_, kSums}, data_.options());
    engine_->evaluate(split_.validation, split_.validation_count, sums);
    const auto host = sums.to(torch::kFloat64).cpu().contiguous();
    std::copy_n(host.data_ptr<double>(), kSums * members_, val_sums.begin());
  }
  comm_.allreduce_sum(val_sums.data(), kSums * members_);
  return val_sums;
}

// The loss of `count` rows from their sums (one run's kSums; the definition in engine.h).
double EnsembleTrainer::mean_loss(const double* sums, int64_t count) const {
  const double n = split_.components_per_row;
  return sums[loss_column(spec_)] / (static_cast<double>(count) * n) +
         value_weight_ * sums[kValueSse] / static_cast<double>(count);
}

// The best validation epoch's weights kept, divergence and early stopping. Every rank sees the same reduced
// numbers, so all ranks decide alike.
void EnsembleTrainer::update_stopping(RunState& run, const EpochRecord& record) {
  if (!std::isfinite(record.train_loss) || !std::isfinite(record.grad_norm) ||
      (split_.has_validation() && !std::isfinite(record.val_loss))) {
    end_run(run, records::RunStatus::diverged);
    return;
  }
  if (split_.has_validation() && record.val_loss < run.best_val_loss) {
    run.best_val_loss = record.val_loss;
    run.best_epoch = record.epoch;
    run.epochs_since_best = 0;
    weights_.saved[run.member].copy_(judged(weights_)[run.member]);
  } else if (spec_.patience > 0 && ++run.epochs_since_best >= spec_.patience) {
    end_run(run, records::RunStatus::early_stopped);
  }
}

// The run's last weights are kept (as model_last with validation); it is saved with its best ones where it has a
// best validation epoch, else with these.
void EnsembleTrainer::end_run(RunState& run, records::RunStatus status) {
  run.result.status = status;
  if (split_.has_validation()) run.result.last_parameters = weights_.judged_of_run(run.member);
  if (run.best_epoch == 0) weights_.saved[run.member].copy_(judged(weights_)[run.member]);
  run.active = false;
}

// One evaluation pass of the weights each run is saved with: its final metrics. Collective over the group.
void EnsembleTrainer::evaluate_saved() {
  {
    torch::NoGradGuard no_grad;
    weights_.flat.copy_(weights_.saved);  // training is over: the engine evaluates what is saved
  }
  const std::vector<double> sums = saved_sums();
  for (auto& state : states_) {
    const int64_t r = state.member;
    auto& final = state.result.final;
    const double* train = &sums[kSums * r];
    final.train_loss = mean_loss(train, split_.train_count);
    final.rel_grad_error =
        split_.target_norm_sq > 0 ? std::sqrt(train[kGradSse] / split_.target_norm_sq) : std::sqrt(train[kGradSse]);
    if (split_.has_validation()) final.val_loss = mean_loss(&sums[kSums * (members_ + r)], split_.validation_count);
    state.result.parameters = weights_.of_run(r);
    state.result.best_epoch = state.best_epoch;
  }
}

// Per run, the loss sums over all ranks' training rows (R × kSums), then over the validation rows (R × kSums),
// flat; the training rows a block at a time, so that no copy of the shard is made.
std::vector<double> EnsembleTrainer::saved_sums() {
  constexpr int64_t kBlockRows = int64_t{1} << 16;
  auto sums = torch::zeros({2, members_, kSums}, data_.options());
  auto train_sums = sums[0], val_sums = sums[1];
  const Batch shard = whole_shard(data_);
  const auto& rows = split_.training_rows;
  const int64_t count = split_.has_validation() ? static_cast<int64_t>(rows.size()) : data_.shard.count;
  for (int64_t first = 0; first < count; first += kBlockRows) {
    const int64_t n = std::min(kBlockRows, count - first);
    const Batch block = split_.has_validation()
                            ? select_rows(data_, std::vector<int64_t>(rows.begin() + first, rows.begin() + first + n))
                            : shard.rows(first, n);
    engine_->evaluate(block, split_.train_count, train_sums);
  }
  if (split_.validation.size() > 0) engine_->evaluate(split_.validation, split_.validation_count, val_sums);
  const auto host = sums.to(torch::kFloat64).cpu().contiguous();
  std::vector<double> flat(host.data_ptr<double>(), host.data_ptr<double>() + 2 * kSums * members_);
  comm_.allreduce_sum(flat.data(), 2 * kSums * members_);
  return flat;
}

// A checkpoint of every active run, to continue at batch `next_batch` of `epoch`; `partial`: the epoch's sums so
// far when that is not its first batch.
void EnsembleTrainer::save_checkpoints(int64_t epoch, int64_t next_batch, const EpochProgress* partial) {
  if (!hooks_.save_checkpoint) return;
  torch::Tensor sums, norms;
  if (partial) {
    sums = partial->sums.to(torch::kFloat64).cpu();
    norms = partial->max_grad_norm.to(torch::kFloat64).cpu();
  }
  std::vector<Checkpoint> saved;
  for (const auto& state : states_) {
    if (!state.active) continue;
    Checkpoint c = snapshot(state, weights_, optimizer_, epoch, next_batch);
    c.wall_seconds = earlier_seconds_ + seconds_since(start_);
    c.allreduce_seconds = earlier_allreduce_ + allreduce_.seconds();
    if (partial) {
      c.partial_grad_sse = sums[state.member][0].item<double>();
      c.partial_value_sse = sums[state.member][1].item<double>();
      c.partial_grad_loss = sums[state.member][kGradLoss].item<double>();
      c.partial_max_grad_norm = norms[state.member].item<double>();
      c.partial_seconds = seconds_since(partial->start);
    }
    saved.push_back(std::move(c));
  }
  if (!saved.empty()) hooks_.save_checkpoint(saved);
}

bool EnsembleTrainer::any_active() const {
  for (const auto& state : states_)
    if (state.active) return true;
  return false;
}

// Runs still active end here: done; paused at this job's last epoch when that is before train.epochs; or
// interrupted when a stop came before it.
std::vector<TrainResult> EnsembleTrainer::finish() {
  const double wall = earlier_seconds_ + seconds_since(start_);
  std::vector<TrainResult> results;
  for (auto& state : states_) {
    if (state.active) {
      const auto trained = static_cast<int64_t>(state.result.history.size());
      const auto status = trained == spec_.epochs  ? records::RunStatus::done
                          : trained == last_epoch_ ? records::RunStatus::paused
                          : stopping_              ? records::RunStatus::interrupted
                                                   : records::RunStatus::done;
      end_run(state, status);
    }
    state.result.wall_seconds = wall;
    state.result.function_evaluations = optimizer_.function_evaluations();
    state.result.allreduce_seconds = earlier_allreduce_ + allreduce_.seconds();
  }
  evaluate_saved();
  for (auto& state : states_) results.push_back(std::move(state.result));
  return results;
}

}  // namespace

std::string ensemble_key(const config::RunSpec& run) {
  // L-BFGS trains alone: each run's line search calls for its own trial points.
  if (run.train.engine != config::Engine::analytic || run.optimizer.name == config::Optimizer::lbfgs) return "";
  config::RunSpec key = run;
  // Each run's learning rate, schedule, momentum and weight decay are its own row's (a per-row rate and factors).
  key.optimizer.lr = 0;
  key.optimizer.momentum = 0;
  key.optimizer.weight_decay = 0;
  key.optimizer.schedule = config::Schedule::constant;
  if (run.train.batch_size == 0 && run.train.val_fraction == 0) key.train.seed = 0;
  return config::canonical_text(key);
}

std::vector<TrainResult> train_ensemble(const std::vector<config::RunSpec>& runs, const data::Dataset& data,
                                        const parallel::Comm& comm, const TrainHooks& hooks,
                                        const std::vector<const Checkpoint*>& resumes,
                                        const std::vector<const NamedTensors*>& initial, int64_t pause_after_epoch) {
  if (runs.empty()) return {};
  check_job(runs, resumes);
  if (!initial.empty() && initial.size() != runs.size())
    throw Error("an ensemble starts from given weights for every run or for none");
  return EnsembleTrainer(runs, data, comm, hooks, resumes, initial, pause_after_epoch).run();
}

TrainResult train(const config::RunSpec& run, const data::Dataset& data, const parallel::Comm& comm,
                  const TrainHooks& hooks, const Checkpoint* resume) {
  std::vector<const Checkpoint*> resumes;
  if (resume) resumes.push_back(resume);
  return train_ensemble({run}, data, comm, hooks, resumes).front();
}

}  // namespace gradfit::train
