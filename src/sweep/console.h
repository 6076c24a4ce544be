#pragma once
// What rank 0 prints while a sweep runs: a line when each run starts and ends, and the runs in flight — as one
// live line on a terminal, as a plain line now and then in a log file (a Slurm job's output).
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "config/config.h"
#include "sweep/scheduler.h"

namespace gradfit::sweep {

class ConsoleReporter : public Reporter {
 public:
  // `runs` as expanded; `out` the stream to print to; `live` true for a terminal.
  ConsoleReporter(const std::vector<config::RunSpec>& runs, std::FILE* out, bool live);
  ~ConsoleReporter() override;

  void started(int64_t index, int group) override;
  void finished(const RunSummary& summary, int group) override;
  void in_flight(const std::vector<RunProgress>& runs) override;

  // A run an earlier invocation finished or left interrupted: counted, and in the leaderboard.
  void add_previous(const RunSummary& summary);

  // The last summary of every run that ended or was interrupted, in the order they first did.
  const std::vector<RunSummary>& results() const { return results_; }
  // The runs as a table, the best first (see best_first).
  void print_leaderboard();
  // A plain line (clearing the live line first).
  void note(const std::string& text) { line(text); }

 private:
  void line(const std::string& text);
  void record(const RunSummary& summary);

  const std::vector<config::RunSpec>& runs_;
  std::FILE* out_;
  bool live_;
  bool live_shown_ = false;
  int64_t started_ = 0;        // runs started, counting those an earlier invocation finished
  std::vector<uint8_t> seen_;  // per run: started or finished already (a pruned sweep starts a run once per rung)
  std::chrono::steady_clock::time_point last_progress_;
  std::vector<RunSummary> results_;
  int64_t ended_ = 0;  // of results_, not interrupted
};

}  // namespace gradfit::sweep
