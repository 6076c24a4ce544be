#pragma once
// The output folder of a sweep: results.h5 (all runs, merged), runs/<id>.h5 (each run's results as soon as it ends
// or is interrupted), checkpoints/<id>.h5 (the state of unfinished runs). An earlier invocation's work is reused if
// it belongs to this sweep, and is an error otherwise: results are never silently mixed or overwritten.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "sweep/scheduler.h"

namespace gradfit::sweep {

// What an earlier invocation left in the output folder.
struct PriorWork {
  std::vector<uint8_t> finished;        // per run: its results are final (done, diverged, early_stopped)
  std::vector<RunSummary> summaries;    // of the finished runs
  std::vector<RunSummary> interrupted;  // of the runs whose results file says interrupted
  std::vector<uint8_t> checkpointed;    // per run: it has a checkpoint to continue from
  // Per checkpoint file (by the index of the run it is named after): its unfinished runs, in the file's order
  // (several for an ensemble, which resumes as one).
  std::map<int64_t, std::vector<int64_t>> checkpoints;
  int64_t resumable = 0;  // runs with a checkpoint
  // Per run, where its checkpoint continues, for a checkpoint file of its own (sweep.prune): the epoch (0: none)
  // and the batches of that epoch already done.
  std::vector<int64_t> checkpoint_epoch;
  std::vector<int64_t> checkpoint_batch;
};

class OutputFolder {
 public:
  explicit OutputFolder(std::filesystem::path dir);

  const std::filesystem::path& dir() const { return dir_; }
  std::string results_file() const;
  // The decisions of sweep.prune (sweep/pruning.h).
  std::string pruning_file() const;
  // Where a run's results go when it ends, and the checkpoint file named after it.
  std::string run_file(const config::RunSpec& run) const;
  std::string checkpoint_file(const config::RunSpec& run) const;
  // The run files of `config`'s runs that exist, in the sweep's order: what results.h5 merges.
  std::vector<std::string> existing_run_files(const config::Config& config) const;

  // Reads what an earlier invocation of `config` left (after removing it all when `fresh`), removes temporaries
  // of interrupted writes and checkpoints whose runs all finished, and creates the folders. Throws IoError for
  // files of another sweep. One rank (world rank 0).
  PriorWork inspect(const config::Config& config, bool fresh) const;

 private:
  std::filesystem::path runs_dir() const { return dir_ / "runs"; }
  std::filesystem::path checkpoints_dir() const { return dir_ / "checkpoints"; }

  std::filesystem::path dir_;
};

}  // namespace gradfit::sweep
