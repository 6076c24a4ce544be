#include "app.h"

#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <optional>

#include "common/error.h"
#include "config/config.h"
#include "data/dataset.h"
#include "device/device.h"
#include "gradfit/version.h"
#include "io/checkpoint.h"
#include "io/h5.h"
#include "io/results.h"
#include "model/mlp.h"
#include "parallel/agree.h"
#include "sweep/console.h"
#include "sweep/scheduler.h"
#include "train/trainer.h"

namespace gradfit {
namespace {

namespace fs = std::filesystem;

// Checks what the YAML alone cannot: runs on a user's file against the file's shape.
void check_against_files(const config::Config& config) {
  std::map<std::string, data::FileLayout> layouts;
  for (const auto& run : config.runs) {
    if (run.data.target != config::Target::file) continue;
    auto it = layouts.find(run.data.path);
    if (it == layouts.end()) it = layouts.emplace(run.data.path, data::inspect_file(run.data.path)).first;
    const auto& layout = it->second;
    if (run.train.batch_size > layout.rows)
      throw ConfigError(config.path + ": key 'train.batch_size': " + std::to_string(run.train.batch_size) +
                        " is larger than the " + std::to_string(layout.rows) + " samples of " + run.data.path +
                        " (run " + run.name + ")");
    if (run.train.value_weight > 0 && !layout.has_values)
      throw ConfigError(config.path + ": key 'train.value_weight' is " + std::to_string(run.train.value_weight) +
                        " but " + run.data.path + " has no dataset 'value' (run " + run.name + ")");
  }
}

// The exit code of a job stopped by SIGTERM or SIGUSR1 with runs left to do (EX_TEMPFAIL): run it again.
constexpr int kExitInterrupted = 75;

// Set by SIGTERM / SIGUSR1: checkpoint at the next step and stop.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int) {
  g_stop_signal = 1;
}

void make_directory(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw IoError("cannot create output directory '" + dir.string() + "': " + error.message());
}

// What an earlier invocation left in the output folder.
struct PriorWork {
  std::vector<uint8_t> finished;             // per run: its results are final (done, diverged, early_stopped)
  std::vector<sweep::RunSummary> summaries;  // of the finished runs
  std::vector<uint8_t> checkpointed;         // per run: it has a checkpoint to continue from
  // Per checkpoint file (by the index of the run it is named after): its unfinished runs, in the file's order
  // (several for an ensemble, which resumes as one).
  std::map<int64_t, std::vector<int64_t>> checkpoints;
  int64_t resumable = 0;  // runs with a checkpoint
};

// The output folder: results.h5 (all runs, merged), runs/<id>.h5 (each run's results as soon as it ends or is
// interrupted), checkpoints/<id>.h5 (the state of unfinished runs). An earlier invocation's work is reused if it
// belongs to this sweep, and is an error otherwise: results are never silently mixed or overwritten.
PriorWork inspect_output(const config::Config& config, const fs::path& out_dir, bool fresh) {
  const fs::path runs_dir = out_dir / "runs", checkpoints_dir = out_dir / "checkpoints";
  if (fresh) {
    std::error_code ignored;
    fs::remove(out_dir / "results.h5", ignored);
    fs::remove_all(runs_dir, ignored);
    fs::remove_all(checkpoints_dir, ignored);
  }
  std::map<std::string, size_t> index_of;
  for (size_t i = 0; i < config.runs.size(); ++i) index_of[config.runs[i].id] = i;
  const auto foreign = [&](const std::string& what) {
    return IoError(what + " is not a run of " + config.path +
                   " as it is now (the sweep file or --set changed existing runs); rerun with --fresh to discard the "
                   "earlier results in " +
                   out_dir.string() + ", or choose another --out");
  };
  PriorWork prior;
  prior.finished.assign(config.runs.size(), 0);
  prior.checkpointed.assign(config.runs.size(), 0);
  if (fs::exists(out_dir / "results.h5")) {
    const auto file = io::File::open_read_only((out_dir / "results.h5").string());
    for (const auto& name : file.children("runs"))
      if (!index_of.count(file.open_group("runs/" + name).read_string_attribute("id")))
        throw foreign("run '" + name + "' in " + (out_dir / "results.h5").string());
  }
  if (fs::exists(runs_dir)) {
    for (const auto& entry : fs::directory_iterator(runs_dir)) {
      if (entry.path().extension() != ".h5") continue;  // a temporary left by a kill
      const auto file = io::File::open_read_only(entry.path().string());
      for (const auto& name : file.children("runs")) {
        const auto group = file.open_group("runs/" + name);
        const auto it = index_of.find(group.read_string_attribute("id"));
        if (it == index_of.end()) throw foreign("run '" + name + "' in " + entry.path().string());
        sweep::RunSummary s;
        s.index = static_cast<int64_t>(it->second);
        const std::string status = group.read_string_attribute("status");
        const auto parsed = records::parse_run_status(status);
        if (!parsed)
          throw IoError(entry.path().string() + ": run '" + name + "' has an unknown status '" + status + "'");
        s.status = *parsed;
        if (s.status == records::RunStatus::interrupted) continue;
        s.epochs_run = group.read_int_attribute("epochs_run");
        s.final_loss = group.read_double_attribute("final_loss");
        s.final_rel_grad_error = group.read_double_attribute("final_rel_grad_error");
        s.seconds = group.read_double_attribute("wall_seconds");
        prior.finished[it->second] = 1;
        prior.summaries.push_back(s);
      }
    }
  }
  if (fs::exists(checkpoints_dir)) {
    for (const auto& entry : fs::directory_iterator(checkpoints_dir)) {
      if (entry.path().extension() != ".h5") continue;
      const auto named = index_of.find(entry.path().stem().string());
      if (named == index_of.end()) throw foreign("checkpoint " + entry.path().string());
      std::vector<int64_t> unfinished;
      for (const auto& id : io::checkpoint_runs(entry.path().string())) {
        const auto it = index_of.find(id);
        if (it == index_of.end()) throw foreign("run " + id + " in checkpoint " + entry.path().string());
        if (!prior.finished[it->second]) unfinished.push_back(static_cast<int64_t>(it->second));
      }
      if (unfinished.empty()) {
        fs::remove(entry.path());  // its runs finished before it could be removed
        continue;
      }
      for (const int64_t i : unfinished) prior.checkpointed[i] = 1;
      prior.resumable += static_cast<int64_t>(unfinished.size());
      prior.checkpoints[static_cast<int64_t>(named->second)] = unfinished;
    }
  }
  // Temporaries of writes a kill interrupted: never complete, never needed.
  for (const auto& dir : {out_dir, runs_dir, checkpoints_dir}) {
    if (!fs::exists(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir))
      if (entry.path().filename().string().find(".tmp-") != std::string::npos) fs::remove(entry.path());
  }
  make_directory(runs_dir);
  make_directory(checkpoints_dir);
  return prior;
}

// Rank 0's reporter also keeps results.h5 nearly current: merged again when a run ends, at most every 30 s (each
// run's own file is written the moment it ends; the final merge comes after the last run).
class SweepReporter : public sweep::ConsoleReporter {
 public:
  SweepReporter(const config::Config& config, bool live, std::function<void()> merge)
      : ConsoleReporter(config.runs, stdout, live), merge_(std::move(merge)) {}
  void finished(const sweep::RunSummary& summary, int group) override {
    ConsoleReporter::finished(summary, group);
    const auto now = std::chrono::steady_clock::now();
    if (now - last_merge_ < std::chrono::seconds(30)) return;
    merge_();
    last_merge_ = now;
  }

 private:
  std::function<void()> merge_;
  std::chrono::steady_clock::time_point last_merge_ = std::chrono::steady_clock::now();
};

std::string batch_text(int64_t batch_size) {
  return batch_size == 0 ? "full" : std::to_string(batch_size);
}

void print_dry_run(const config::Config& config) {
  std::printf("%zu run%s from %s (nothing is trained with --dry-run)\n", config.runs.size(),
              config.runs.size() == 1 ? "" : "s", config.path.c_str());
  std::printf("%-5s %-12s %-12s %-9s %-8s %-10s %-7s %-6s %s\n", "#", "id", "architecture", "act", "opt", "lr",
              "epochs", "batch", "name");
  for (size_t i = 0; i < config.runs.size(); ++i) {
    const auto& r = config.runs[i];
    const int64_t dim = r.data.target == config::Target::file ? 0 : r.data.dim;
    std::printf("%-5zu %-12s %-12s %-9s %-8s %-10g %-7lld %-6s %s\n", i + 1, r.id.c_str(),
                model::architecture(r.model, dim).c_str(), config::to_string(r.model.activation),
                config::to_string(r.optimizer.name), r.optimizer.lr, static_cast<long long>(r.train.epochs),
                batch_text(r.train.batch_size).c_str(), r.name.c_str());
  }
}

// The weights of a run's layers (Σ fan_in · fan_out).
double weight_count(const config::RunSpec& run) {
  double weights = 0;
  int64_t in = std::max<int64_t>(1, run.data.dim);
  for (const int64_t w : run.model.widths) weights += static_cast<double>(in * w), in = w;
  return weights + static_cast<double>(in);
}

// Relative cost of a run, to start the longest first: epochs × samples × weights.
double estimated_cost(const config::RunSpec& run) {
  const double samples = std::max<int64_t>(1, config::analytic_sample_count(run.data));
  return static_cast<double>(run.train.epochs) * samples * weight_count(run);
}

// One step's matrix work per rank of a run, in flops (12 per weight and sample), on `rows` samples.
double step_flops(const config::RunSpec& run, int64_t rows, int group_ranks) {
  const int64_t batch = run.train.batch_size > 0 ? std::min(run.train.batch_size, rows) : rows;
  return 12.0 * weight_count(run) * static_cast<double>((batch + group_ranks - 1) / group_ranks);
}

// Which runs train together: the jobs the scheduler hands out, a job being one run or an ensemble. Runs left to
// do that share train::ensemble_key are packed, at most `ensemble_size` to a job (0: as many as keep one step's
// work per rank within a budget that per-operation overheads no longer dominate, and no fewer jobs than groups);
// runs with a checkpoint resume as they were saved (alone, or as the ensemble that was saved). Each key's runs are
// cut into near-equal ensembles. Rank 0 only (it reads the data files' sizes).
struct JobPlan {
  std::vector<std::vector<int64_t>> jobs;
  std::vector<int64_t> sources;  // per job: the run its checkpoint file is named after, or -1 for a fresh start
  std::vector<double> costs;     // of each job, for the scheduler's order
};
JobPlan plan_jobs(const config::Config& config, const PriorWork& prior, int groups, int group_ranks,
                  torch::Device device) {
  const double budget = device.is_cuda() ? 16e9 : 64e6;
  constexpr int64_t kMostAutomatic = 64;
  std::vector<int64_t> todo;
  for (int64_t i = 0; i < static_cast<int64_t>(config.runs.size()); ++i)
    if (!prior.finished[i]) todo.push_back(i);
  const auto balanced = static_cast<int64_t>((todo.size() + groups - 1) / std::max(groups, 1));
  JobPlan plan;
  std::map<std::string, std::vector<int64_t>> classes;  // by key, runs in sweep order
  std::vector<std::string> class_order;
  std::map<std::string, data::FileLayout> layouts;
  for (const auto& [source, runs] : prior.checkpoints) {
    plan.jobs.push_back(runs);
    plan.sources.push_back(source);
  }
  for (const int64_t i : todo) {
    if (prior.checkpointed[i]) continue;
    const auto& run = config.runs[i];
    const std::string key = train::ensemble_key(run);
    if (key.empty() || config.ensemble_size == 1) {
      plan.jobs.push_back({i});
      plan.sources.push_back(-1);
      continue;
    }
    if (!classes.count(key)) class_order.push_back(key);
    classes[key].push_back(i);
  }
  for (const auto& key : class_order) {
    const auto& members = classes[key];
    const auto& run = config.runs[members.front()];
    int64_t size = config.ensemble_size;
    if (size == 0) {
      int64_t rows = config::analytic_sample_count(run.data);
      if (rows < 0) {
        auto it = layouts.find(run.data.path);
        if (it == layouts.end()) it = layouts.emplace(run.data.path, data::inspect_file(run.data.path)).first;
        rows = it->second.rows;
      }
      const double flops = step_flops(run, rows, group_ranks);
      size = std::clamp<int64_t>(static_cast<int64_t>(budget / std::max(flops, 1.0)), 1, kMostAutomatic);
      size = std::min(size, std::max<int64_t>(balanced, 1));
    }
    const auto count = static_cast<int64_t>(members.size());
    const int64_t jobs = (count + size - 1) / size;
    for (int64_t j = 0, first = 0; j < jobs; ++j) {  // near-equal: the first (count % jobs) get one more
      const int64_t length = count / jobs + (j < count % jobs ? 1 : 0);
      plan.jobs.emplace_back(members.begin() + first, members.begin() + first + length);
      plan.sources.push_back(-1);
      first += length;
    }
  }
  for (const auto& job : plan.jobs) {
    double cost = 0;
    for (const int64_t i : job) cost += estimated_cost(config.runs[i]);
    plan.costs.push_back(cost);
  }
  return plan;
}

// Rank 0's jobs and their checkpoint sources, sent to every rank (costs stay on rank 0).
void share_jobs(const parallel::Comm& world, JobPlan& plan) {
  std::vector<int64_t> flat;  // per job: its length, its source, its runs
  for (size_t j = 0; j < plan.jobs.size(); ++j) {
    flat.push_back(static_cast<int64_t>(plan.jobs[j].size()));
    flat.push_back(plan.sources[j]);
    flat.insert(flat.end(), plan.jobs[j].begin(), plan.jobs[j].end());
  }
  int64_t length = static_cast<int64_t>(flat.size());
  world.broadcast(&length, sizeof(length));
  flat.resize(static_cast<size_t>(length));
  world.broadcast(flat.data(), length * static_cast<int64_t>(sizeof(int64_t)));
  plan.jobs.clear();
  plan.sources.clear();
  for (size_t at = 0; at < flat.size(); at += static_cast<size_t>(flat[at]) + 2) {
    const auto first = flat.begin() + static_cast<std::ptrdiff_t>(at) + 2;
    plan.jobs.emplace_back(first, first + flat[at]);
    plan.sources.push_back(flat[at + 1]);
  }
}

// Each rank keeps the last dataset it loaded: the runs of a sweep usually share their data.
class DataCache {
 public:
  const data::Dataset& get(const config::RunSpec& run, const parallel::Comm& group, torch::Device device) {
    config::RunSpec key_run;
    key_run.data = run.data;
    const std::string key = config::canonical_text(key_run) + config::to_string(run.model.dtype);
    if (!cached_ || key != key_) {
      cached_.reset();
      cached_ = data::load_dataset(run.data, model::torch_dtype(run.model.dtype), group, device);
      key_ = key;
    }
    return *cached_;
  }

 private:
  std::optional<data::Dataset> cached_;
  std::string key_;
};

int run(const AppOptions& options, const parallel::Comm& world) {
  config::Config config;  // every rank reads the same file and finds the same errors
  parallel::all_or_none(world, true, [&] { config = config::load_config(options.config_path, options.overrides); });
  const bool root = world.is_root();
  if (options.dry_run) {
    if (root) print_dry_run(config);
    return 0;
  }
  parallel::all_or_none(world, root, [&] { check_against_files(config); });

  const auto node = world.node_local();
  const int threads = options.threads > 0 ? options.threads : device::default_thread_count(node.size);
  torch::set_num_threads(threads);
  torch::Device device = torch::kCPU;
  parallel::all_or_none(world, true, [&] { device = device::select_device(config.device, node.rank, config.path); });

  const fs::path out_dir = !options.out_dir.empty()     ? fs::path(options.out_dir)
                           : !config.output_dir.empty() ? fs::path(config.output_dir)
                                                        : fs::path("results") / config.name;
  const fs::path results_path = out_dir / "results.h5";
  const fs::path runs_dir = out_dir / "runs", checkpoints_dir = out_dir / "checkpoints";
  PriorWork prior;
  parallel::all_or_none(world, root, [&] { prior = inspect_output(config, out_dir, options.fresh); });

  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);
  const auto stop_requested = [] { return g_stop_signal != 0; };

  const int groups = sweep::group_count(world.size(), config.ranks_per_run);
  const bool single = config.runs.size() == 1;
  if (root) {
    std::printf("gradfit_dist %s: %s, %zu run%s, %d rank%s in %d group%s, %d thread%s per rank, device %s\n", kVersion,
                options.config_path.c_str(), config.runs.size(), single ? "" : "s", world.size(),
                world.size() == 1 ? "" : "s", groups, groups == 1 ? "" : "s", threads, threads == 1 ? "" : "s",
                device.str().c_str());
    if (!prior.summaries.empty() || prior.resumable > 0)
      std::printf("continuing in %s: %zu run%s already finished, %lld to resume from checkpoints\n", out_dir.c_str(),
                  prior.summaries.size(), prior.summaries.size() == 1 ? "" : "s",
                  static_cast<long long>(prior.resumable));
    std::fflush(stdout);
  }

  const auto run_file = [&](const config::RunSpec& run) { return (runs_dir / (run.id + ".h5")).string(); };
  const auto checkpoint_file = [&](const config::RunSpec& run) {
    return (checkpoints_dir / (run.id + ".h5")).string();
  };
  JobPlan plan;
  parallel::all_or_none(world, root, [&] {
    const int group_ranks = config.ranks_per_run <= 0 ? world.size() : std::min(config.ranks_per_run, world.size());
    plan = plan_jobs(config, prior, groups, group_ranks, device);
  });
  share_jobs(world, plan);
  if (root) {
    int64_t ensembles = 0, in_ensembles = 0, largest = 0;
    for (const auto& job : plan.jobs) {
      const auto size = static_cast<int64_t>(job.size());
      if (size == 1) continue;
      ++ensembles;
      in_ensembles += size;
      largest = std::max(largest, size);
    }
    if (ensembles > 0) {
      std::printf("%lld runs train in %lld ensemble%s of up to %lld (ensemble_size: %d)\n",
                  static_cast<long long>(in_ensembles), static_cast<long long>(ensembles), ensembles == 1 ? "" : "s",
                  static_cast<long long>(largest), config.ensemble_size);
      std::fflush(stdout);
    }
  }
  std::map<int64_t, int64_t> source_of;  // a job's first run -> the run its checkpoint file is named after
  for (size_t j = 0; j < plan.jobs.size(); ++j) source_of[plan.jobs[j].front()] = plan.sources[j];
  DataCache cache;
  const auto run_job = [&](const std::vector<int64_t>& indices, const parallel::Comm& group,
                           const train::TrainHooks& hooks) {
    std::vector<config::RunSpec> runs;
    for (const int64_t index : indices) {
      if (options.before_run && group.is_root()) options.before_run(index);
      runs.push_back(config.runs[index]);
    }
    const auto& data = cache.get(runs.front(), group, device);
    // Every rank reads the checkpoint (same file, same state): that of the run itself, or of the ensemble it was
    // saved with; none for a fresh start.
    const int64_t source = source_of.count(indices.front()) ? source_of.at(indices.front()) : -1;
    std::vector<records::Checkpoint> checkpoints;
    if (source >= 0) {
      std::vector<std::string> ids;
      for (const auto& run : runs) ids.push_back(run.id);
      checkpoints = io::read_checkpoints(checkpoint_file(config.runs[source]), ids);
    }
    std::vector<const records::Checkpoint*> resume;
    for (const auto& c : checkpoints) resume.push_back(&c);
    if (!resume.empty() && single && root)
      std::printf("resuming %s at epoch %lld\n", runs.front().name.c_str(), static_cast<long long>(resume[0]->epoch));
    // The job's checkpoints go to the file named after its first run; a checkpoint it resumed from under another
    // name is removed once superseded.
    const std::string job_checkpoint = checkpoint_file(runs.front());
    std::string stale = source >= 0 && checkpoint_file(config.runs[source]) != job_checkpoint
                            ? checkpoint_file(config.runs[source])
                            : "";

    train::TrainHooks with_log = hooks;
    // Checkpoints every `checkpoint.every_epochs` epochs and/or `checkpoint.every_seconds` seconds (the group's
    // rank 0 decides; the allreduce makes it the group's decision), and whenever a signal stops the job.
    auto last_checkpoint = std::chrono::steady_clock::now();
    int64_t completed = resume.empty() ? 0 : static_cast<int64_t>(resume[0]->history.size());
    int64_t completed_at_checkpoint = completed;
    with_log.on_epoch = [&](size_t member, const records::EpochRecord& r) {
      if (hooks.on_epoch) hooks.on_epoch(member, r);
      if (r.epoch != completed && options.after_epoch) options.after_epoch(r.epoch);
      completed = r.epoch;
      const auto& run = runs[member];
      const bool logged = r.epoch == 1 || r.epoch % run.train.log_every == 0 || r.epoch == run.train.epochs;
      if (single && root && (logged || !std::isfinite(r.train_loss))) {
        std::printf("epoch %6lld  loss %.6e  rel_grad_error %.4e", static_cast<long long>(r.epoch), r.train_loss,
                    r.rel_grad_error);
        if (std::isfinite(r.val_loss)) std::printf("  val_loss %.6e", r.val_loss);
        std::printf("\n");
        std::fflush(stdout);
      }
    };
    with_log.stop_requested = stop_requested;
    with_log.checkpoint_due = [&] {
      const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_checkpoint).count();
      return (config.checkpoint_every > 0 && completed - completed_at_checkpoint >= config.checkpoint_every) ||
             (config.checkpoint_seconds > 0 && since >= config.checkpoint_seconds);
    };
    with_log.save_checkpoint = [&](const std::vector<records::Checkpoint>& saved) {
      last_checkpoint = std::chrono::steady_clock::now();
      completed_at_checkpoint = completed;
      if (!group.is_root()) return;
      std::vector<std::string> ids;
      for (const auto& c : saved) ids.push_back(runs[c.member].id);
      io::write_checkpoints(job_checkpoint, ids, saved, options.before_checkpoint_commit);
      if (!stale.empty()) std::remove(stale.c_str());
      stale.clear();
    };
    const std::vector<records::TrainResult> results = train::train_ensemble(runs, data, group, with_log, resume);
    std::vector<sweep::RunSummary> summaries;
    for (size_t i = 0; i < runs.size(); ++i) {
      const auto& run = runs[i];
      const auto& result = results[i];
      if (group.is_root()) {
        io::RunContext context;
        context.command_line = options.command_line;
        context.ranks = group.size();
        context.threads_per_rank = threads;
        context.device = device.str();
        context.data_description = data.description;
        context.total_rows = data.total_rows;
        context.dim = data.dim;
        // Each run's results are on disk as soon as it ends, or is interrupted, whatever happens to the rest.
        io::write_results(run_file(run), config, run, context, result);
      }
      sweep::RunSummary summary;
      summary.status = result.status;
      summary.epochs_run = static_cast<int64_t>(result.history.size());
      summary.final_loss = result.history.empty() ? NAN : result.history.back().train_loss;
      summary.final_rel_grad_error = result.history.empty() ? NAN : result.history.back().rel_grad_error;
      summary.seconds = result.wall_seconds;
      summaries.push_back(summary);
    }
    // Interrupted runs were all checkpointed at the stop; otherwise every run of the job has ended.
    const bool interrupted = std::any_of(results.begin(), results.end(),
                                         [](const records::TrainResult& r) {
                                           return r.status == records::RunStatus::interrupted;
                                         });
    if (group.is_root() && !interrupted) {
      std::remove(job_checkpoint.c_str());
      if (!stale.empty()) std::remove(stale.c_str());
    }
    return summaries;
  };

  const auto merge = [&] {
    std::vector<std::string> files;
    for (const auto& run : config.runs)
      if (fs::exists(run_file(run))) files.push_back(run_file(run));
    io::merge_results(results_path.string(), config, options.command_line, files);
  };
  // Under mpirun rank 0's stdout is a pseudo-terminal even when mpirun's output goes to a file, so "auto" also
  // asks for no Slurm job around it.
  const bool live = options.progress == "live" ||
                    (options.progress == "auto" && isatty(fileno(stdout)) && !std::getenv("SLURM_JOB_ID"));
  SweepReporter reporter(config, root && live && !single, merge);
  for (const auto& s : prior.summaries) reporter.add_previous(s);
  sweep::run_all(world, config.ranks_per_run, plan.jobs, plan.costs, run_job, reporter, stop_requested);

  // Rank 0 knows whether every run is finished; everybody exits with the same code.
  int64_t unfinished = 0;
  if (root) {
    unfinished = static_cast<int64_t>(config.runs.size());
    for (const auto& s : reporter.results())
      if (s.status != records::RunStatus::interrupted) --unfinished;
  }
  world.broadcast(&unfinished, sizeof(unfinished));
  parallel::all_or_none(world, root, merge);
  if (root) {
    if (!single) reporter.print_leaderboard();
    std::printf("wrote %s\n", results_path.c_str());
    if (unfinished > 0)
      std::printf("stopped by a signal: %lld run%s unfinished; run the same command again to continue (exit code %d)\n",
                  static_cast<long long>(unfinished), unfinished == 1 ? "" : "s", kExitInterrupted);
  }
  return unfinished > 0 ? kExitInterrupted : 0;
}

}  // namespace

int run_app(const AppOptions& options, const parallel::Comm& comm) {
  try {
    return run(options, comm);
  } catch (const CollectiveError& e) {  // every rank is here: rank 0 reports, all return
    if (comm.is_root()) std::fprintf(stderr, "gradfit_dist: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gradfit_dist: error on rank %d: %s\n", comm.rank(), message_of(e).c_str());
  }
  // Only this rank failed: the others may be waiting in a collective, so end them all.
  std::fflush(stderr);
  if (comm.size() > 1) comm.abort(1);
  return 1;
}

}  // namespace gradfit
