#pragma once
// The files one job keeps in the output folder, on one rank of its group: the checkpoint it resumes from and saves
// (one file named after the job's first run, or with own_checkpoints one per run) and each run's results file.
// The group's rank 0 writes and removes; every rank reads; parallel::all_or_none makes each step the group's.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "config/config.h"
#include "io/results.h"
#include "parallel/comm.h"
#include "records/records.h"
#include "sweep/jobs.h"
#include "sweep/output_folder.h"

namespace gradfit::sweep {

// For its scope, names `member` as the run a failure concerns (the job's blamed run); when the scope ends normally
// the job's first run is blamed again, while an exception leaving it keeps the member, so that the error names it.
class BlameScope {
 public:
  BlameScope(size_t& blamed, size_t member);
  ~BlameScope();
  BlameScope(const BlameScope&) = delete;
  BlameScope& operator=(const BlameScope&) = delete;

 private:
  size_t& blamed_;
  const int exceptions_;
};

class JobFiles {
 public:
  // `runs`: the job's runs, in its order; `before_commit`: the test seam called before a checkpoint is renamed
  // into place (may be empty).
  JobFiles(const OutputFolder& folder, const config::Config& config, const JobSpec& job,
           const std::vector<config::RunSpec>& runs, const parallel::Comm& group, std::function<void()> before_commit);

  // Collective: the checkpoint of the job's runs, or of the ensemble they were saved with; none for a fresh start.
  // `blamed` names the run whose file is being read (BlameScope). A checkpoint resumed from under another name is
  // removed once superseded.
  std::vector<records::Checkpoint> read_checkpoints(size_t& blamed);
  // Collective, at the same step on every rank: the root writes, and the group agrees on whether it could.
  void save_checkpoint(const std::vector<records::Checkpoint>& saved);
  // Root: interrupted and paused runs keep their checkpoint; otherwise every run of the job has ended and its
  // checkpoints go (with own_checkpoints, each run's own file as soon as it ends).
  void remove_checkpoints(const std::vector<records::TrainResult>& results) const;
  // Collective: the results file of the job's run `member`, written by the root.
  void write_run_file(size_t member, const io::RunProvenance& context, const records::TrainResult& result) const;

 private:
  const OutputFolder& folder_;
  const config::Config& config_;
  const JobSpec& job_;
  const std::vector<config::RunSpec>& runs_;
  const parallel::Comm& group_;
  std::function<void()> before_commit_;
  std::string job_checkpoint_;  // the job's checkpoints go to the file named after its first run
  std::string stale_;           // a checkpoint resumed from under another name, until superseded
};

}  // namespace gradfit::sweep
