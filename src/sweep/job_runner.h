#pragma once
// The work of one job on its group of ranks: load the data, resume from a checkpoint, train (logging, taking
// checkpoints), write each run's results file and report a summary per run.
#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/dataset.h"
#include "parallel/comm.h"
#include "sweep/jobs.h"
#include "sweep/output_folder.h"
#include "sweep/scheduler.h"
#include "train/dataset_cache.h"
#include "train/trainer.h"

namespace gradfit::sweep {

// What every job of a sweep shares.
struct SweepSettings {
  std::string command_line;  // recorded in each run's results
  int threads_per_rank = 1;
  torch::Device device = torch::kCPU;
  bool print_epochs = false;          // this rank prints a lone run's loss every train.log_every epochs
  std::function<bool()> stop_signal;  // every rank: true once a signal asked to checkpoint and stop
  // Test seams (see AppOptions): every rank after every epoch; the group's rank 0 before each run of a job (a
  // failure there is the group's); the group's rank 0 before a checkpoint's temporary file is renamed into place.
  std::function<void(int64_t epoch)> after_epoch;
  std::function<void(int64_t run_index)> before_run;
  std::function<void()> before_checkpoint_commit;
};

// Runs the jobs the scheduler hands out (the JobFunction of run_jobs). Each rank keeps the last data it loaded
// (train::DatasetCache): the runs of a sweep usually share their data.
class JobRunner {
 public:
  JobRunner(const config::Config& config, const OutputFolder& folder, SweepSettings settings);

  // Collective over `group`: trains the runs of `job` and returns a summary per run (a run paused at a rung of
  // sweep.prune keeps its checkpoint and writes no results file; one pruned writes its results). Every
  // step that only some ranks can fail (reading the checkpoint, the root writing checkpoints and run files) is
  // shared through parallel::all_or_none, so that a failure the group agrees on comes out as a CollectiveError
  // "run <name>: <cause>" on every rank of the group; a failure on one rank alone comes out as an Error naming
  // the run.
  std::vector<RunSummary> run(const JobSpec& job, const parallel::Comm& group, const train::TrainHooks& hooks);

  const config::Config& config() const { return config_; }
  const OutputFolder& folder() const { return folder_; }
  const SweepSettings& settings() const { return settings_; }
  // The training and test data of the runs, kept between jobs (train/dataset_cache.h).
  train::DatasetCache& datasets() { return datasets_; }

 private:
  const config::Config& config_;
  const OutputFolder& folder_;
  SweepSettings settings_;
  train::DatasetCache datasets_;
};

}  // namespace gradfit::sweep
