#pragma once
// results.h5 while a sweep runs: world rank 0 merges it again from the run files when a run ends, at most every
// 30 s (each run's own file is written the moment it ends; the final merge comes after the last run).
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "sweep/console.h"
#include "sweep/output_folder.h"
#include "sweep/scheduler.h"

namespace gradfit {

class ResultsMerger {
 public:
  ResultsMerger(const config::Config& config, const sweep::OutputFolder& folder, std::string command_line);
  // A run ended: merge if the last merge is 30 s old.
  void run_ended();
  // results.h5 from every run file there is, now. One rank (world rank 0).
  void merge() const;

 private:
  const config::Config& config_;
  const sweep::OutputFolder& folder_;
  std::string command_line_;
  std::chrono::steady_clock::time_point last_merge_ = std::chrono::steady_clock::now();
};

// What run_jobs tells world rank 0 goes to the console, and each run's end also to the merger.
class SweepReporter : public sweep::Reporter {
 public:
  SweepReporter(sweep::ConsoleReporter& console, ResultsMerger& merger) : console_(console), merger_(merger) {}
  void started(int64_t index, int group) override { console_.started(index, group); }
  void finished(const sweep::RunSummary& summary, int group) override {
    console_.finished(summary, group);
    merger_.run_ended();
  }
  void in_flight(const std::vector<sweep::RunProgress>& runs) override { console_.in_flight(runs); }
  void paused(const sweep::RunSummary& summary, int group) override { console_.paused(summary, group); }

 private:
  sweep::ConsoleReporter& console_;
  ResultsMerger& merger_;
};

}  // namespace gradfit
