#include "app.h"

#include <torch/torch.h>
#include <unistd.h>

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
#include "dist/device.h"
#include "gradfit/version.h"
#include "io/checkpoint.h"
#include "io/h5.h"
#include "io/results.h"
#include "model/mlp.h"
#include "sweep/console.h"
#include "sweep/scheduler.h"
#include "train/trainer.h"

namespace gradfit {
namespace {

namespace fs = std::filesystem;

// Runs `action` on every rank where `participate` is true and shares the first failure: every rank then throws
// the same collective Error, carrying the message of the lowest failing rank. `action` must not itself call
// collectives, or a rank that failed before one would leave the others waiting in it.
void all_or_none(const dist::Comm& comm, bool participate, const std::function<void()>& action) {
  std::string message;
  if (participate) {
    try {
      action();
    } catch (const std::exception& e) {
      message = e.what();
      if (message.empty()) message = "unknown error";
    }
  }
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  const int64_t failed = comm.allreduce_min(message.empty() ? kNone : comm.rank());
  if (failed == kNone) return;
  int64_t length = static_cast<int64_t>(message.size());
  comm.broadcast(&length, sizeof(length), static_cast<int>(failed));
  message.resize(static_cast<size_t>(length));
  comm.broadcast(message.data(), length, static_cast<int>(failed));
  throw Error(message, /*collective=*/true);
}

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
  int64_t resumable = 0;                     // runs with a checkpoint to continue from
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
        s.status = group.read_string_attribute("status");
        if (s.status == "interrupted") continue;
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
      const auto it = index_of.find(entry.path().stem().string());
      if (it == index_of.end()) throw foreign("checkpoint " + entry.path().string());
      if (prior.finished[it->second])
        fs::remove(entry.path());  // the run finished before its checkpoint could be removed
      else
        ++prior.resumable;
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

// Relative cost of a run, to start the longest first: epochs × samples × weights.
double estimated_cost(const config::RunSpec& run) {
  const double samples = std::max<int64_t>(1, config::analytic_sample_count(run.data));
  double weights = 0;
  int64_t in = std::max<int64_t>(1, run.data.dim);
  for (const int64_t w : run.model.widths) weights += static_cast<double>(in * w), in = w;
  weights += static_cast<double>(in);
  return static_cast<double>(run.train.epochs) * samples * weights;
}

// Each rank keeps the last dataset it loaded: the runs of a sweep usually share their data.
class DataCache {
 public:
  const data::Dataset& get(const config::RunSpec& run, const dist::Comm& group, torch::Device device) {
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

int run(const AppOptions& options, const dist::Comm& world) {
  const config::Config config = config::load_config(options.config_path, options.overrides);
  const bool root = world.is_root();
  if (options.dry_run) {
    if (root) print_dry_run(config);
    return 0;
  }
  all_or_none(world, root, [&] { check_against_files(config); });

  const auto node = world.node_local();
  const int threads = options.threads > 0 ? options.threads : dist::default_thread_count(node.size);
  torch::set_num_threads(threads);
  torch::Device device = torch::kCPU;
  all_or_none(world, true, [&] { device = dist::select_device(config.device, node.rank, config.path); });

  const fs::path out_dir = !options.out_dir.empty()     ? fs::path(options.out_dir)
                           : !config.output_dir.empty() ? fs::path(config.output_dir)
                                                        : fs::path("results") / config.name;
  const fs::path results_path = out_dir / "results.h5";
  const fs::path runs_dir = out_dir / "runs", checkpoints_dir = out_dir / "checkpoints";
  PriorWork prior;
  all_or_none(world, root, [&] { prior = inspect_output(config, out_dir, options.fresh); });

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
  DataCache cache;
  const auto run_one = [&](int64_t index, const dist::Comm& group, const train::TrainHooks& hooks) {
    const auto& run = config.runs[index];
    if (options.before_run && group.is_root()) options.before_run(index);
    const auto& data = cache.get(run, group, device);
    // Every rank reads the checkpoint (same file, same state); none exists for a fresh run.
    std::optional<train::Checkpoint> resume;
    if (fs::exists(checkpoint_file(run))) resume = io::read_checkpoint(checkpoint_file(run), run.id);
    if (resume && single && root)
      std::printf("resuming %s at epoch %lld\n", run.name.c_str(), static_cast<long long>(resume->epoch));

    train::TrainHooks with_log = hooks;
    with_log.on_epoch = [&](const train::EpochRecord& r) {
      if (hooks.on_epoch) hooks.on_epoch(r);
      if (options.after_epoch) options.after_epoch(r.epoch);
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
    // Checkpoints every `checkpoint.every_epochs` epochs and/or `checkpoint.every_seconds` seconds (the group's
    // rank 0 decides; the allreduce makes it the group's decision), and whenever a signal stops the run.
    auto last_checkpoint = std::chrono::steady_clock::now();
    int64_t completed = resume ? static_cast<int64_t>(resume->history.size()) : 0;
    int64_t completed_at_checkpoint = completed;
    with_log.on_epoch = [&, log = with_log.on_epoch](const train::EpochRecord& r) {
      completed = r.epoch;
      log(r);
    };
    with_log.checkpoint_due = [&] {
      const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - last_checkpoint).count();
      return (config.checkpoint_every > 0 && completed - completed_at_checkpoint >= config.checkpoint_every) ||
             (config.checkpoint_seconds > 0 && since >= config.checkpoint_seconds);
    };
    with_log.save_checkpoint = [&](const train::Checkpoint& c) {
      last_checkpoint = std::chrono::steady_clock::now();
      completed_at_checkpoint = completed;
      if (group.is_root()) io::write_checkpoint(checkpoint_file(run), run.id, c, options.before_checkpoint_commit);
    };
    const train::TrainResult result = train::train(run, data, group, with_log, resume ? &*resume : nullptr);
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
      if (result.status != "interrupted") std::remove(checkpoint_file(run).c_str());
    }
    sweep::RunSummary summary;
    summary.status = result.status;
    summary.epochs_run = static_cast<int64_t>(result.history.size());
    summary.final_loss = result.history.empty() ? NAN : result.history.back().train_loss;
    summary.final_rel_grad_error = result.history.empty() ? NAN : result.history.back().rel_grad_error;
    summary.seconds = result.wall_seconds;
    return summary;
  };

  const auto merge = [&] {
    std::vector<std::string> files;
    for (const auto& run : config.runs)
      if (fs::exists(run_file(run))) files.push_back(run_file(run));
    io::merge_results(results_path.string(), config, options.command_line, files);
  };
  std::vector<double> costs;
  for (const auto& r : config.runs) costs.push_back(estimated_cost(r));
  // Under mpirun rank 0's stdout is a pseudo-terminal even when mpirun's output goes to a file, so "auto" also
  // asks for no Slurm job around it.
  const bool live = options.progress == "live" ||
                    (options.progress == "auto" && isatty(fileno(stdout)) && !std::getenv("SLURM_JOB_ID"));
  SweepReporter reporter(config, root && live && !single, merge);
  for (const auto& s : prior.summaries) reporter.add_previous(s);
  sweep::run_all(world, config.ranks_per_run, costs, prior.finished, run_one, reporter, stop_requested);

  // Rank 0 knows whether every run is finished; everybody exits with the same code.
  int64_t unfinished = 0;
  if (root) {
    unfinished = static_cast<int64_t>(config.runs.size());
    for (const auto& s : reporter.results())
      if (s.status != "interrupted") --unfinished;
  }
  world.broadcast(&unfinished, sizeof(unfinished));
  all_or_none(world, root, merge);
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

int run_app(const AppOptions& options, const dist::Comm& comm) {
  try {
    return run(options, comm);
  } catch (const Error& e) {
    if (e.collective()) {
      if (comm.is_root()) std::fprintf(stderr, "gradfit_dist: error: %s\n", e.what());
      return 1;
    }
    std::fprintf(stderr, "gradfit_dist: error on rank %d: %s\n", comm.rank(), e.what());
  } catch (const c10::Error& e) {
    std::string text = e.what_without_backtrace();
    text = text.substr(0, text.find('\n'));
    std::fprintf(stderr, "gradfit_dist: error on rank %d: LibTorch: %s\n", comm.rank(), text.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gradfit_dist: error on rank %d: %s\n", comm.rank(), e.what());
  }
  // Only this rank failed: the others may be waiting in a collective, so end them all.
  std::fflush(stderr);
  if (comm.size() > 1) comm.abort(1);
  return 1;
}

}  // namespace gradfit
