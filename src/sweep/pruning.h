#pragma once
// sweep.prune, on world rank 0: the source of the sweep's jobs when runs are pruned. Every run trains to the first
// rung (min_epochs) and pauses there, checkpointed; the pruner compares the runs of a rung and sends each on to the
// next rung (a new job, re-packed with the other survivors into ensembles) or ends it `pruned` (a job that only
// writes its results, from the checkpoint). The last rung's survivors train to train.epochs.
//
// Deterministic by default: a rung is decided once every run that trains to it has reported (paused there, or
// ended before it), so the decisions depend on the metrics alone, not on the number of groups or the timing.
// async: a run is promoted as soon as it ranks in the best 1/η of the rung's reports so far (ASHA), or is not worse
// than the median of the reports so far; the rest are pruned when nothing else is left to do.
//
// The decisions are kept in OUT/pruning.tsv (written whole, atomically, after each change), so a killed sweep
// resumes with them: a pruned run stays pruned, a promoted run continues from its checkpoint, no finished rung is
// trained again.
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "records/records.h"
#include "sweep/output_folder.h"
#include "sweep/scheduler.h"

namespace gradfit::sweep {

// The metric rungs compare, from a run's history: the best validation loss so far, or the training loss or
// relative gradient error of its last epoch. +inf when none is finite (a diverged run ranks last).
double prune_metric(config::PruneMetric metric, const std::vector<records::EpochRecord>& history);

// The last rung reached after `epochs_run` epochs (io::RunProvenance::rung); -1 without pruning or before the first.
int64_t reached_rung(const config::PruneSpec& spec, int64_t epochs_run);

// Cuts runs into jobs (ensembles of runs that share train::ensemble_key).
using Packing = std::function<std::vector<std::vector<int64_t>>(const std::vector<int64_t>& runs)>;

// One decision of a rung, as pruning.tsv keeps it.
enum class Decision { reported, promoted, pruned };

class Pruner : public JobSource {
 public:
  // `prior`: what earlier invocations left; `state_file`: the decisions file (read when it exists; a file written
  // under other sweep.prune settings, or naming other runs, is an IoError). `say` prints a line (a rung decided).
  Pruner(const config::Config& config, const PriorWork& prior, Packing pack, std::string state_file,
         std::function<void(const std::string&)> say);

  Next next(JobSpec* job) override;
  void finished(const RunSummary& summary) override;

 private:
  enum class Stage { idle, queued, training, waiting, ended };
  struct RunState {
    Stage stage = Stage::idle;
    int rung = 0;              // the rung it trains toward or waits at (rungs_.size(): to the end)
    int64_t resume_epoch = 0;  // its checkpoint continues at this epoch (0: none) ...
    int64_t resume_batch = 0;  // ... after this many of its batches
  };
  struct Row {  // a line of pruning.tsv
    int64_t run = 0;
    int rung = 0;
    double metric = 0;
    Decision decision = Decision::reported;
  };
  struct Rung {
    int64_t population = 0;                           // runs that train to it
    int64_t ended = 0;                                // of them, ended before it (diverged, early stopped)
    std::vector<std::pair<double, int64_t>> reports;  // (metric, run) of those that paused there
    bool decided = false;
  };

  void restore(const PriorWork& prior);
  void restore_run(int64_t run, const PriorWork& prior);
  void read_state();
  void write_state() const;
  std::string settings_text() const;

  void report(int64_t run, double metric);
  void try_decide(int rung);
  void decide(int rung);
  void decide_async(int rung, int64_t run);
  void promote(int64_t run, int rung);
  void prune(int64_t run, int rung);
  void settle_waiting();
  void queue_jobs();
  void queue(std::vector<int64_t>& runs, bool prune);
  Row& row_of(int64_t run, int rung);

  const config::Config& config_;
  const config::PruneSpec spec_;
  const std::vector<int64_t> rungs_;
  Packing pack_;
  std::string state_file_;
  std::function<void(const std::string&)> say_;
  std::vector<RunState> runs_;
  std::vector<Rung> rung_state_;
  std::vector<Row> rows_;
  std::vector<int64_t> to_queue_;  // runs decided (or restored) whose next job is not queued yet
  std::vector<int64_t> to_prune_;
  std::deque<JobSpec> queue_;
  int64_t training_ = 0;  // runs in jobs handed out and not yet reported
};

}  // namespace gradfit::sweep
