#include "app.h"

#include "app_checks.h"
#include "app_compute.h"
#include "app_console.h"
#include "app_nodes.h"
#include "app_results.h"
#include "app_signals.h"
#include "app_sweep.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "common/error.h"
#include "config/config.h"
#include "data/dataset.h"
#include "parallel/agree.h"
#include "parallel/watchdog.h"
#include "sweep/console.h"
#include "sweep/folder_lock.h"
#include "sweep/job_runner.h"
#include "sweep/jobs.h"
#include "sweep/output_folder.h"
#include "sweep/pruning.h"
#include "sweep/scheduler.h"

namespace gradfit {
namespace {

namespace fs = std::filesystem;

using data::FileLayouts;

// The ranks of a full group (a last group may be smaller).
int group_ranks(const parallel::Comm& world, const config::Config& config) {
  return config.ranks_per_run <= 0 ? world.size() : std::min(config.ranks_per_run, world.size());
}

// --dry-run's memory line: the largest job's estimate per rank with this launch's ranks, on the device the
// configuration asks for (auto as the CPU: nothing is set up). World rank 0.
void print_dry_run_memory(const parallel::Comm& world, const config::Config& config) {
  const torch::Device device = config.device == config::Device::cuda ? torch::kCUDA : torch::kCPU;
  const int ranks = group_ranks(world, config);
  print_memory_estimate(
      sweep::estimate_jobs(config, sweep::group_count(world.size(), config.ranks_per_run), ranks, device), ranks,
      device);
}

// The exit code of a job stopped by SIGTERM or SIGUSR1 with runs left to do (EX_TEMPFAIL): run it again.
constexpr int kExitInterrupted = 75;

// The threads and device of this rank, the memory a job needs against the nodes', the output folder's path: with
// the data files (checked before, also for --dry-run), everything checked before the folder is touched. Collective
// over `world`; every failure is shared (CollectiveError).
void check(const AppOptions& options, const parallel::Comm& world, Sweep& s) {
  const auto node = world.node_local();
  const Compute compute =
      set_up_compute({options.threads, s.config.denormals, s.config.device, s.config.path + ": key 'device'"}, world);
  s.threads = compute.threads;
  s.device = compute.device;
  s.nodes = node_lines(world, s.threads);
  const sweep::MemoryBudget budget = memory_budget(world, node);
  const int groups = sweep::group_count(world.size(), s.config.ranks_per_run);
  parallel::all_or_none(world, world.is_root(),
                        [&] { sweep::check_memory(s.config, groups, group_ranks(world, s.config), s.device, budget); });
  s.out_dir = !options.out_dir.empty()       ? fs::path(options.out_dir)
              : !s.config.output_dir.empty() ? fs::path(s.config.output_dir)
                                             : fs::path("results") / s.config.name;
}

// What an earlier invocation left in the output folder (locked by world rank 0), the jobs. Collective over `world`;
// every failure is shared (CollectiveError).
void prepare(const AppOptions& options, const parallel::Comm& world, Sweep& s) {
  const bool root = world.is_root();
  const sweep::OutputFolder folder(s.out_dir);
  parallel::all_or_none(world, root, [&] { s.prior = folder.inspect(s.config, options.fresh); });
  catch_stop_signals();  // from here on a signal stops the job with its work saved
  s.groups = sweep::group_count(world.size(), s.config.ranks_per_run);
  if (root) print_start(options.config_path, world.size(), s);
  if (s.config.prune.active()) {
    if (root) print_pruning(s.config.prune);
    return;  // the pruner packs each rung's jobs as it goes
  }
  parallel::all_or_none(world, root, [&] {
    s.plan = sweep::plan_jobs(s.config, s.prior, s.groups, group_ranks(world, s.config), s.device);
  });
  if (root) print_ensembles(s);
}

// World rank 0's source of jobs: the plan's, or the pruner's. Collective over `world` (a pruner's decisions file
// that does not belong to this sweep is a shared error).
std::unique_ptr<sweep::JobSource> job_source(const parallel::Comm& world, const Sweep& s,
                                             const sweep::OutputFolder& folder, sweep::ConsoleReporter& console) {
  std::unique_ptr<sweep::JobSource> source;
  parallel::all_or_none(world, world.is_root(), [&] {
    if (!s.config.prune.active()) {
      source = std::make_unique<sweep::PlannedJobs>(sweep::job_specs(s.plan), s.plan.costs);
      return;
    }
    const int ranks = group_ranks(world, s.config);
    auto pack = [&s, ranks](const std::vector<int64_t>& runs) {
      return sweep::pack_runs(s.config, runs, s.groups, ranks, s.device);
    };
    auto say = [&console](const std::string& text) { console.note(text); };
    source = std::make_unique<sweep::Pruner>(s.config, s.prior, pack, folder.pruning_file(), say);
  });
  return source;
}

// "--progress auto" rewrites a line in place only on a terminal that this process writes to itself. A rank that an
// MPI launcher (OpenMPI, MPICH/Hydra, PMIx) or Slurm started may see a pseudo-terminal even when the launcher's
// output goes to a file or a pipe, and no variable tells which: there "auto" means "lines".
bool auto_is_live() {
  for (const char* launcher : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_JOB_ID"})
    if (std::getenv(launcher)) return false;
  return isatty(fileno(stdout)) != 0;
}

sweep::SweepSettings job_settings(const AppOptions& options, const parallel::Comm& world, const Sweep& s) {
  sweep::SweepSettings settings;
  settings.command_line = options.command_line;
  settings.threads_per_rank = s.threads;
  settings.device = s.device;
  settings.print_epochs = s.config.runs.size() == 1 && world.is_root();
  settings.stop_signal = stop_signalled;
  settings.after_epoch = options.after_epoch;
  settings.before_run = options.before_run;
  settings.before_checkpoint_commit = options.before_checkpoint_commit;
  return settings;
}

// Trains every job left, merges the results, and returns the exit code: 0, or kExitInterrupted when a signal
// stopped runs. A failed job ends the sweep with its CollectiveError, on every rank, once results.h5 holds every
// run that finished.
int train_all(const AppOptions& options, const parallel::Comm& world, const Sweep& s) {
  const bool root = world.is_root(), single = s.config.runs.size() == 1;
  const sweep::OutputFolder folder(s.out_dir);
  sweep::JobRunner runner(s.config, folder, job_settings(options, world, s));
  const bool live = options.progress == "live" || (options.progress == "auto" && auto_is_live());
  sweep::ConsoleReporter console(s.config.runs, stdout, root && live && !single);
  for (const auto& summary : s.prior.summaries) console.add_previous(summary);
  for (const auto& summary : s.prior.interrupted) console.add_previous(summary);
  ResultsMerger merger(s.config, folder, options.command_line);
  SweepReporter reporter(console, merger);
  const auto source = job_source(world, s, folder, console);
  const auto run_job = [&runner](const sweep::JobSpec& job, const parallel::Comm& group,
                                 const train::TrainHooks& hooks) { return runner.run(job, group, hooks); };
  const auto failure = sweep::run_jobs(world, s.config.ranks_per_run, source.get(), run_job, reporter, stop_signalled);

  // Rank 0 knows whether every run is finished; everybody exits with the same code.
  int64_t unfinished = static_cast<int64_t>(s.config.runs.size());
  for (const auto& summary : console.results())
    if (summary.status != records::RunStatus::interrupted) --unfinished;
  world.broadcast(&unfinished, sizeof(unfinished));
  // A failed job writes results.h5 only when some run has results to keep: no empty file for a job that failed
  // before any run ended.
  bool merged = false;
  try {
    parallel::all_or_none(world, root, [&] {
      merged = !failure || !folder.existing_run_files(s.config).empty();
      if (merged) merger.merge();
    });
  } catch (const CollectiveError& e) {  // a failed job stays the error to report
    if (!failure) throw;
    throw CollectiveError(*failure + " (and " + e.what() + ")");
  }
  if (root) {
    if (!single) console.print_leaderboard();
    if (merged) std::printf("wrote %s\n", folder.results_file().c_str());
    if (unfinished > 0 && !failure) print_stopped(unfinished, kExitInterrupted);
    std::fflush(stdout);
  }
  if (failure) throw CollectiveError(*failure);
  return unfinished > 0 ? kExitInterrupted : 0;
}

// The watchdog's last words (world rank 0 holds the lock; the other ranks end silently): one line, the outcome, the
// lock released. The checkpoints stay, so the same command continues the runs.
void give_up_after_stop(const sweep::FolderLock& lock, double timeout) {
  if (!lock.held()) return;
  char text[320];
  std::snprintf(text, sizeof(text),
                "stopped by a signal, but no other rank answered for %g s: a rank of this job is gone (the "
                "launcher's messages say which); run the same command again to continue from the checkpoints",
                timeout);
  std::fprintf(stderr, "gradfit_dist: error: %s\n", text);
  std::fflush(stderr);
  lock.abandon(std::string("failed: ") + text);
}

int run(const AppOptions& options, const parallel::Comm& world) {
  Sweep s;  // every rank reads the same file and finds the same errors
  parallel::all_or_none(world, true, [&] { s.config = config::load_config(options.config_path, options.overrides); });
  FileLayouts layouts;  // world rank 0's
  parallel::all_or_none(world, world.is_root(), [&] { layouts = check_against_files(s.config); });
  parallel::all_or_none(world, true, [&] { attach_elements(s.config); });
  if (options.dry_run) {
    if (world.is_root()) print_dry_run(s.config, layouts);
    parallel::all_or_none(world, world.is_root(), [&] { print_dry_run_memory(world, s.config); });
    if (world.is_root() && s.config.prune.active()) print_pruning(s.config.prune);
    return 0;
  }
  check(options, world, s);
  check_test_rows(s.config, world);
  // From here on the folder is this invocation's, until `lock` goes out of scope (however the job ends).
  sweep::FolderLock lock;  // held by world rank 0
  parallel::all_or_none(world, world.is_root(), [&] { lock = sweep::FolderLock::take(s.out_dir); });
  // One rank alone has nobody to wait for.
  const double stop_timeout = world.size() > 1 ? options.stop_timeout : 0;
  const parallel::StopWatchdog watchdog(stop_signalled, stop_timeout,
                                        [&lock, stop_timeout] { give_up_after_stop(lock, stop_timeout); });
  try {
    prepare(options, world, s);
    const int code = train_all(options, world, s);
    lock.write_outcome(code == 0 ? "complete" : "interrupted");
    return code;
  } catch (const CollectiveError& e) {
    lock.write_outcome(std::string("failed: ") + e.what());
    throw;
  } catch (const std::exception& e) {  // this rank's own failure: the job ends with MPI_Abort, world rank 0 with it
    sweep::write_outcome(s.out_dir, "failed: error on rank " + std::to_string(world.rank()) + ": " + message_of(e));
    throw;
  }
}

}  // namespace

int run_app(const AppOptions& options, const parallel::Comm& comm) {
  return run_reporting_errors(comm, [&] { return run(options, comm); });
}

int run_reporting_errors(const parallel::Comm& comm, const std::function<int()>& command) {
  try {
    return command();
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
