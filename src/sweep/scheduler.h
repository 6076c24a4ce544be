#pragma once
// Running many runs on one allocation: the world is split into groups of `ranks_per_run` ranks; world rank 0
// coordinates, handing the next job (most expensive first) to whichever group frees up, while also training in
// its own group. A job is one run, or several trained together as an ensemble; each group trains its job
// data-parallel over its own communicator.
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "parallel/comm.h"
#include "train/trainer.h"

namespace gradfit::sweep {

// What the coordinator hears of a finished run (or of a run paused at a rung of sweep.prune).
struct RunSummary {
  int64_t index = -1;
  records::RunStatus status = records::RunStatus::done;
  int64_t epochs_run = 0;
  double final_loss = 0;
  double final_rel_grad_error = 0;
  double seconds = 0;
  double metric = 0;  // sweep.prune's metric at the last epoch trained (+inf when it is not finite)
  double best_val_loss = std::numeric_limits<double>::quiet_NaN();        // NaN without validation
  double test_rel_grad_error = std::numeric_limits<double>::quiet_NaN();  // on data.test_path; NaN without
};

// One job: the runs a group trains together, and how far.
struct JobSpec {
  std::vector<int64_t> runs;  // run indices: one run, or an ensemble
  // The checkpoint the runs continue from: the file named after this run (holding them all), or -1 for a fresh
  // start. With own_checkpoints, any run index of the job: each run's state is in the file named after it.
  int64_t source = -1;
  bool own_checkpoints = false;   // sweep.prune: every run's checkpoints go to, and come from, its own file
  int64_t pause_after_epoch = 0;  // sweep.prune: train to this epoch and pause (checkpointed); 0: to the end
  bool prune = false;             // sweep.prune: end the runs `pruned` where their checkpoints are (no training)
};

// World rank 0's supply of jobs to the groups.
class JobSource {
 public:
  enum class Next { job, wait, none };  // a job now; none now but maybe after a run in flight reports; none ever
  virtual ~JobSource() = default;
  virtual Next next(JobSpec* job) = 0;
  // Each run of a handed-out job reports once (paused or finished); an interrupted or failed job reports nothing
  // more after the sweep stops.
  virtual void finished(const RunSummary& summary) = 0;
};

// The jobs of a fixed list, the most expensive first (ties in the list's order).
class PlannedJobs : public JobSource {
 public:
  PlannedJobs(std::vector<JobSpec> jobs, const std::vector<double>& costs);
  Next next(JobSpec* job) override;
  void finished(const RunSummary&) override {}

 private:
  std::vector<JobSpec> jobs_;
  std::vector<size_t> order_;
  size_t taken_ = 0;
};

// Where a run stands, as last reported.
struct RunProgress {
  int64_t index = -1;
  int group = 0;
  int64_t epoch = 0;
  double loss = 0;
  double rel_grad_error = 0;
  double elapsed = 0;  // seconds since the run started
};

// Told, on world rank 0 only, what happens to the runs.
class Reporter {
 public:
  virtual ~Reporter() = default;
  virtual void started(int64_t index, int group) = 0;
  virtual void finished(const RunSummary& summary, int group) = 0;
  // Called often (between training steps and while waiting); decides itself when to print.
  virtual void in_flight(const std::vector<RunProgress>& runs) = 0;
  // A run paused at a rung of sweep.prune (it continues or is pruned later).
  virtual void paused(const RunSummary& summary, int group) {
    (void)summary;
    (void)group;
  }
};

// Trains the runs of one job on `group` (called on every rank of the group) and returns a summary per run, in
// order (read on the group's rank 0). `hooks` must be passed to the trainer: they keep the coordinator responsive,
// carry progress (on_epoch's member is the position in `runs`) and ask the group to stop (stop_requested: another
// group failed). A failure that every rank of the group agrees on is thrown as CollectiveError, on every rank of
// the group, naming the run: it ends the sweep (see run_all). Any other exception is one rank's and propagates.
using RunFunction = std::function<std::vector<RunSummary>(const std::vector<int64_t>& runs, const parallel::Comm& group,
                                                          const train::TrainHooks& hooks)>;
using JobFunction = std::function<std::vector<RunSummary>(const JobSpec& job, const parallel::Comm& group,
                                                          const train::TrainHooks& hooks)>;

// Collective over `world`, which passes the same `jobs` (run indices) and `costs` (one per job) on every rank:
// runs every job at most once. `ranks_per_run` is clamped to [1, world size] (0 means the world size); a last
// group may be smaller. World rank 0 hands out no more jobs once `stop_requested()` is true there or a run comes
// back "interrupted". `reporter` and `stop_requested` are used on world rank 0 only.
//
// When a job fails on its group (run_job throws CollectiveError), the group's root sends the message to world
// rank 0, which hands out no more jobs and tells every group still training to checkpoint at its next step and
// stop (its runs end "interrupted"). Returns the first failure's message, the same on every rank, or nothing when
// no job failed.
std::optional<std::string> run_all(const parallel::Comm& world, int ranks_per_run,
                                   const std::vector<std::vector<int64_t>>& jobs, const std::vector<double>& costs,
                                   const RunFunction& run_job, Reporter& reporter,
                                   const std::function<bool()>& stop_requested = {});

// The same for the jobs `source` hands out (on world rank 0; nullptr elsewhere): a group whose request finds no job
// yet (Next::wait) waits for one until the source says none. Every job travels to its group whole.
std::optional<std::string> run_jobs(const parallel::Comm& world, int ranks_per_run, JobSource* source,
                                    const JobFunction& run_job, Reporter& reporter,
                                    const std::function<bool()>& stop_requested = {});

// The groups a world of `world_size` ranks splits into.
int group_count(int world_size, int ranks_per_run);

}  // namespace gradfit::sweep
