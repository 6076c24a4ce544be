#pragma once
// What rank 0 prints while a sweep runs: a line when each run starts and ends, and the runs in flight — as one
// live line on a terminal, as a plain line now and then in a log file (a Slurm job's output).
#include <chrono>
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

  // A run an earlier invocation finished: counted, and in the leaderboard.
  void add_previous(const RunSummary& summary) { results_.push_back(summary); }

  // Every finished run so far, in the order they finished.
  const std::vector<RunSummary>& results() const { return results_; }
  // The finished runs as a table, best final relative gradient error first.
  void print_leaderboard();

 private:
  void line(const std::string& text);  // a plain line, clearing the live line first

  const std::vector<config::RunSpec>& runs_;
  std::FILE* out_;
  bool live_;
  bool live_shown_ = false;
  int64_t started_ = 0;
  std::chrono::steady_clock::time_point last_progress_;
  std::vector<RunSummary> results_;
};

}  // namespace gradfit::sweep
