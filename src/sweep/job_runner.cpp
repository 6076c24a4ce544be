#include "sweep/job_runner.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>

#include "common/error.h"
#include "inference/evaluate.h"
#include "io/results.h"
#include "io/saved_run.h"
#include "model/analytic.h"
#include "model/mlp.h"
#include "parallel/agree.h"
#include "sweep/job_files.h"
#include "sweep/pruning.h"
#include "train/standardization_fit.h"

namespace gradfit::sweep {
namespace {

using Clock = std::chrono::steady_clock;

// The weights `parameters` of `run` (trained under `standardization`) evaluated on `test` by eval's own function
// (inference::evaluate_run), so that the metrics are eval's on the same ranks. Collective.
records::TestMetrics test_metrics(const config::RunSpec& run, const NamedTensors& parameters,
                                  const model::Standardization& standardization, const data::Dataset& test,
                                  torch::Device device, const parallel::Comm& group) {
  io::SavedRun saved;
  saved.model = run.model;
  saved.input_dim = test.dim;
  saved.parameters = parameters;
  saved.standardization = standardization;
  data::Dataset points = test;  // shares the rows; evaluation overwrites grad_samples with its predictions
  if (!test.is_frames()) points.grad_samples = test.grad_samples.clone();
  const auto m = inference::evaluate_run(saved, points, device, group).metrics;
  records::TestMetrics out;
  out.file = run.data.test_path;
  out.rows = m.rows;
  out.rel_grad_error = m.rel_grad_error;
  double abs_sum = 0, sq_sum = 0;  // the per-component means over rows, averaged over the n components
  for (size_t j = 0; j < m.grad_mae.size(); ++j) abs_sum += m.grad_mae[j], sq_sum += m.grad_rmse[j] * m.grad_rmse[j];
  const auto n = static_cast<double>(m.grad_mae.size());
  out.grad_mae = abs_sum / n;
  out.grad_rmse = std::sqrt(sq_sum / n);
  out.value_mae = m.value_mae_centred;
  out.value_offset = m.value_offset;
  out.value_mae_per_atom = m.value_mae_per_atom;
  return out;
}

// The runs of `config` at `indices`, in their order.
std::vector<config::RunSpec> runs_of(const config::Config& config, const std::vector<int64_t>& indices) {
  std::vector<config::RunSpec> runs;
  for (const int64_t index : indices) runs.push_back(config.runs[index]);
  return runs;
}

// The hosts of the group's ranks, each once, in rank order, comma-separated: on the group's rank 0 (empty elsewhere).
// Collective over `group`.
std::string group_hosts(const parallel::Comm& group) {
  std::string hosts;
  std::vector<std::string> seen;
  for (const auto& host : group.gather_texts(parallel::host_name())) {
    if (std::find(seen.begin(), seen.end(), host) != seen.end()) continue;
    hosts += (seen.empty() ? "" : ",") + host;
    seen.push_back(host);
  }
  return hosts;
}

// One job in progress on one rank of its group.
class Job {
 public:
  Job(JobRunner& runner, const JobSpec& job, const parallel::Comm& group, const train::TrainHooks& hooks)
      : runner_(runner),
        config_(runner.config()),
        settings_(runner.settings()),
        job_(job),
        indices_(job.runs),
        group_(group),
        hooks_(hooks),
        runs_(runs_of(config_, job.runs)),
        files_(runner.folder(), config_, job, runs_, group, settings_.before_checkpoint_commit) {}

  std::vector<RunSummary> run() {
    announce();
    hosts_ = group_hosts(group_);
    const auto& data = runner_.datasets().training(runs_.front(), group_);
    const auto checkpoints = files_.read_checkpoints(blamed_);
    std::vector<const records::Checkpoint*> resume;
    for (const auto& c : checkpoints) resume.push_back(&c);
    const auto starts = read_initial_weights(data);
    std::vector<const NamedTensors*> initial;
    for (const auto& start : starts) initial.push_back(start.empty() ? nullptr : &start);
    completed_ = completed_at_checkpoint_ = resume.empty() ? 0 : static_cast<int64_t>(resume[0]->history.size());
    if (!resume.empty() && settings_.print_epochs)
      std::printf("resuming %s at epoch %lld\n", runs_.front().name.c_str(), static_cast<long long>(resume[0]->epoch));
    auto results = train::train_ensemble(runs_, data, group_, trainer_hooks(), resume, initial, job_.pause_after_epoch);
    train::final_metrics_in_user_units(results, runs_.front(), data, group_);
    for (auto& result : results)
      if (job_.prune && result.status == records::RunStatus::paused) result.status = records::RunStatus::pruned;
    evaluate_on_test_file(results, data);
    std::vector<RunSummary> summaries;
    for (size_t i = 0; i < runs_.size(); ++i) {
      if (results[i].status != records::RunStatus::paused) write_run_file(i, results[i], data);
      summaries.push_back(summary_of(i, results[i]));
    }
    files_.remove_checkpoints(results);
    return summaries;
  }

  // The run a failure concerns: the job's first, or the run being written or logged when it happened.
  const std::string& blamed() const { return runs_[blamed_].name; }

 private:
  // The before_run seam, on the group's rank 0, for each run of the job.
  void announce() {
    for (size_t i = 0; i < runs_.size(); ++i) {
      const BlameScope blame(blamed_, i);
      const bool seam = settings_.before_run && group_.is_root();
      parallel::all_or_none(group_, seam, [&] { settings_.before_run(indices_[i]); });
    }
  }

  // Per run, the weights of the run its train.init_from names (every rank reads them), or none. A source of
  // another architecture is an error naming both. Weights trained under another standardization (or none) are
  // re-expressed under this run's, so that the warm start begins from the same V(x).
  std::vector<NamedTensors> read_initial_weights(const data::Dataset& data) {
    const int64_t input_dim = data.dim;
    std::vector<NamedTensors> starts(runs_.size());
    for (size_t i = 0; i < runs_.size(); ++i) {
      const auto& run = runs_[i];
      if (run.train.init_from.empty()) continue;
      const BlameScope blame(blamed_, i);
      parallel::all_or_none(group_, true, [&] {
        io::SavedRun source = io::read_saved_run(run.train.init_from, "");
        const auto theirs = model::architecture(source.model, source.input_dim);
        const auto ours = model::architecture(run.model, input_dim);
        if (theirs != ours)
          throw ConfigError("train.init_from " + run.train.init_from + ": run " + source.name + " is " + theirs +
                            ", this run " + ours + " (warm starts need the same architecture)");
        starts[i] = model::reparameterize(source.parameters, source.standardization, data.standardization,
                                          model::feature_dim(run.model, input_dim));
      });
    }
    return starts;
  }

  train::TrainHooks trainer_hooks() {
    train::TrainHooks hooks;
    hooks.on_epoch = [this](size_t member, const records::EpochRecord& r) { on_epoch(member, r); };
    hooks.between_steps = hooks_.between_steps;
    hooks.stop_requested = [this] { return stop_requested(); };
    hooks.checkpoint_due = [this] { return checkpoint_due(); };
    hooks.save_checkpoint = [this](const std::vector<records::Checkpoint>& saved) { save_checkpoint(saved); };
    return hooks;
  }

  void on_epoch(size_t member, const records::EpochRecord& r) {
    if (hooks_.on_epoch) hooks_.on_epoch(member, r);
    if (r.epoch != completed_ && settings_.after_epoch) {
      const BlameScope blame(blamed_, member);
      settings_.after_epoch(r.epoch);
    }
    completed_ = r.epoch;
    const auto& run = runs_[member];
    const bool logged = r.epoch == 1 || r.epoch % run.train.log_every == 0 || r.epoch == run.train.epochs;
    if (!settings_.print_epochs || !(logged || !std::isfinite(r.train_loss))) return;
    std::printf("epoch %6lld  loss %.6e  rel_grad_error %.4e", static_cast<long long>(r.epoch), r.train_loss,
                r.rel_grad_error);
    if (std::isfinite(r.val_loss)) std::printf("  val_loss %.6e", r.val_loss);
    std::printf("\n");
    std::fflush(stdout);
  }

  // A signal, or the sweep (another group failed): checkpoint at the next step and stop.
  bool stop_requested() const {
    const bool signal = settings_.stop_signal && settings_.stop_signal();
    return (hooks_.stop_requested && hooks_.stop_requested()) || signal;
  }

  // Every `checkpoint.every_epochs` epochs and/or `checkpoint.every_seconds` seconds (the group's rank 0 decides;
  // the trainer's allreduce makes it the group's decision).
  bool checkpoint_due() const {
    const double since = std::chrono::duration<double>(Clock::now() - last_checkpoint_).count();
    return (config_.checkpoint_every > 0 && completed_ - completed_at_checkpoint_ >= config_.checkpoint_every) ||
           (config_.checkpoint_seconds > 0 && since >= config_.checkpoint_seconds);
  }

  // Called by the trainer on every rank of the group at the same step.
  void save_checkpoint(const std::vector<records::Checkpoint>& saved) {
    last_checkpoint_ = Clock::now();
    completed_at_checkpoint_ = completed_;
    files_.save_checkpoint(saved);
  }

  // data.test_path: every run that ended (not one interrupted or paused, which trains on later) is evaluated on the
  // test file with the weights it is saved with, as `eval` evaluates them.
  void evaluate_on_test_file(const std::vector<records::TrainResult>& results, const data::Dataset& data) {
    tests_.assign(runs_.size(), std::nullopt);
    for (size_t i = 0; i < runs_.size(); ++i) {
      const auto status = results[i].status;
      const bool ended = status != records::RunStatus::interrupted && status != records::RunStatus::paused;
      if (runs_[i].data.test_path.empty() || !ended) continue;
      const BlameScope blame(blamed_, i);
      tests_[i] = test_metrics(runs_[i], results[i].parameters, data.standardization,
                               runner_.datasets().test(runs_[i], group_), settings_.device, group_);
    }
  }

  // Each run's results are on disk as soon as it ends, or is interrupted, whatever happens to the rest.
  void write_run_file(size_t member, const records::TrainResult& result, const data::Dataset& data) {
    const BlameScope blame(blamed_, member);
    io::RunProvenance context;
    context.command_line = settings_.command_line;
    context.ranks = group_.size();
    context.threads_per_rank = settings_.threads_per_rank;
    context.device = settings_.device.str();
    context.hosts = hosts_;
    context.denormals = config::to_string(config_.denormals);
    context.data_description = data.description;
    context.total_rows = data.total_rows;
    context.dim = data.dim;
    context.standardization = data.standardization;
    context.weighted = data.has_weights();
    context.numbers = data.numbers;
    context.test = tests_[member];
    const auto epochs_run = static_cast<int64_t>(result.history.size());
    context.rung = reached_rung(config_.prune, epochs_run);
    if (result.status == records::RunStatus::pruned) context.pruned_at_epoch = epochs_run;
    files_.write_run_file(member, context, result);
  }

  RunSummary summary_of(size_t member, const records::TrainResult& result) const {
    RunSummary summary;
    if (tests_[member]) summary.test_rel_grad_error = tests_[member]->rel_grad_error;
    summary.metric = prune_metric(config_.prune.metric, result.history);
    const double best_val = prune_metric(config::PruneMetric::val_loss, result.history);
    if (std::isfinite(best_val)) summary.best_val_loss = best_val;
    summary.status = result.status;
    summary.epochs_run = static_cast<int64_t>(result.history.size());
    summary.final_loss = result.final.train_loss;  // of the weights the run is saved with
    summary.final_rel_grad_error = result.final.rel_grad_error;
    summary.seconds = result.wall_seconds;
    return summary;
  }

  JobRunner& runner_;
  const config::Config& config_;
  const SweepSettings& settings_;
  const JobSpec& job_;
  const std::vector<int64_t>& indices_;
  const parallel::Comm& group_;
  const train::TrainHooks& hooks_;  // from the scheduler
  const std::vector<config::RunSpec> runs_;
  JobFiles files_;                                          // its checkpoints and run files
  std::vector<std::optional<records::TestMetrics>> tests_;  // per run: on data.test_path, when evaluated
  std::string hosts_;      // the group's hosts (its rank 0 only), recorded in each run's results
  size_t blamed_ = 0;      // the member a failure concerns (BlameScope), else the job's first run
  int64_t completed_ = 0;  // epochs
  int64_t completed_at_checkpoint_ = 0;
  Clock::time_point last_checkpoint_ = Clock::now();
};

}  // namespace

JobRunner::JobRunner(const config::Config& config, const OutputFolder& folder, SweepSettings settings)
    : config_(config), folder_(folder), settings_(std::move(settings)), datasets_(settings_.device) {}

std::vector<RunSummary> JobRunner::run(const JobSpec& spec, const parallel::Comm& group,
                                       const train::TrainHooks& hooks) {
  Job job(*this, spec, group, hooks);
  try {
    return job.run();
  } catch (const CollectiveError& e) {  // the same on every rank of the group
    throw CollectiveError("run " + job.blamed() + ": " + e.what());
  } catch (const std::exception& e) {  // this rank's alone
    throw Error("run " + job.blamed() + ": " + message_of(e));
  }
}

}  // namespace gradfit::sweep
