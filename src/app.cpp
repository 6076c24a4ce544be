#include "app.h"

#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
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

// Refuse before training, not after, to replace a finished sweep's results.
void check_output(const fs::path& results, bool overwrite) {
  if (fs::exists(results) && !overwrite)
    throw IoError("results file '" + results.string() +
                  "' already exists; choose another --out or pass --overwrite to replace it");
}

void make_directory(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw IoError("cannot create output directory '" + dir.string() + "': " + error.message());
}

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
  const fs::path runs_dir = out_dir / "runs";
  all_or_none(world, root, [&] {
    check_output(results_path, options.overwrite);
    make_directory(runs_dir);
  });

  const int groups = sweep::group_count(world.size(), config.ranks_per_run);
  const bool single = config.runs.size() == 1;
  if (root) {
    std::printf("gradfit_dist %s: %s, %zu run%s, %d rank%s in %d group%s, %d thread%s per rank, device %s\n", kVersion,
                options.config_path.c_str(), config.runs.size(), single ? "" : "s", world.size(),
                world.size() == 1 ? "" : "s", groups, groups == 1 ? "" : "s", threads, threads == 1 ? "" : "s",
                device.str().c_str());
    std::fflush(stdout);
  }

  DataCache cache;
  const auto run_one = [&](int64_t index, const dist::Comm& group, const train::TrainHooks& hooks) {
    const auto& run = config.runs[index];
    const auto& data = cache.get(run, group, device);
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
    const train::TrainResult result = train::train(run, data, group, with_log);
    if (group.is_root()) {
      io::RunContext context;
      context.command_line = options.command_line;
      context.ranks = group.size();
      context.threads_per_rank = threads;
      context.device = device.str();
      context.data_description = data.description;
      context.total_rows = data.total_rows;
      context.dim = data.dim;
      // Each finished run is on disk at once, whatever happens to the rest of the sweep.
      io::write_results((runs_dir / (run.id + ".h5")).string(), config, run, context, result);
    }
    sweep::RunSummary summary;
    summary.status = result.status;
    summary.epochs_run = static_cast<int64_t>(result.history.size());
    summary.final_loss = result.history.empty() ? NAN : result.history.back().train_loss;
    summary.final_rel_grad_error = result.history.empty() ? NAN : result.history.back().rel_grad_error;
    summary.seconds = result.wall_seconds;
    return summary;
  };

  std::vector<double> costs;
  for (const auto& r : config.runs) costs.push_back(estimated_cost(r));
  // Under mpirun rank 0's stdout is a pseudo-terminal even when mpirun's output goes to a file, so "auto" also
  // asks for no Slurm job around it.
  const bool live = options.progress == "live" ||
                    (options.progress == "auto" && isatty(fileno(stdout)) && !std::getenv("SLURM_JOB_ID"));
  sweep::ConsoleReporter reporter(config.runs, stdout, root && live && !single);
  sweep::run_all(world, config.ranks_per_run, costs, run_one, reporter);

  all_or_none(world, root, [&] {
    std::vector<std::string> files;
    for (const auto& run : config.runs) files.push_back((runs_dir / (run.id + ".h5")).string());
    io::merge_results(results_path.string(), config, options.command_line, files);
    std::error_code ignored;  // the merged file is complete; leftovers are harmless
    for (const auto& file : files) fs::remove(file, ignored);
    fs::remove(runs_dir, ignored);
  });
  if (root) {
    if (!single) reporter.print_leaderboard();
    std::printf("wrote %s\n", results_path.c_str());
  }
  return 0;
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
