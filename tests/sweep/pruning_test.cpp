// sweep.prune's rungs and the pruner's decisions, driven without MPI: jobs are taken from the pruner and their runs
// reported back as a group would, in any order.
#include "sweep/pruning.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "config/config.h"

namespace gradfit::sweep {
namespace {

config::Config sweep_of(const std::string& prune, int64_t epochs = 36) {
  return config::parse_config("data: {target: rosenbrock, dim: 2}\ntrain: {epochs: " + std::to_string(epochs) +
                                  ", val_fraction: 0.2}\nsweep:\n  grid: {optimizer.lr: [1, 2, 3, 4, 5, 6, 7, 8, "
                                  "9, 10, 11, 12]}\n  prune: " +
                                  prune + "\n",
                              "prune.yaml");
}

TEST(PruneSpec, RungsAreGeometricForAshaAndEvenlySpacedForMedian) {
  EXPECT_EQ(sweep_of("{method: asha, min_epochs: 4}").prune.rungs(), (std::vector<int64_t>{4, 12}));
  EXPECT_EQ(sweep_of("{method: asha, min_epochs: 4}", 37).prune.rungs(), (std::vector<int64_t>{4, 12, 36}));
  EXPECT_EQ(sweep_of("{method: asha, min_epochs: 2, reduction_factor: 4}", 100).prune.rungs(),
            (std::vector<int64_t>{2, 8, 32}));
  EXPECT_EQ(sweep_of("{method: median, min_epochs: 6}").prune.rungs(), (std::vector<int64_t>{6, 12, 18, 24, 30}));
  const auto defaults = sweep_of("{method: asha}", 540).prune;  // min_epochs epochs/η³, metric val_loss
  EXPECT_EQ(defaults.rungs(), (std::vector<int64_t>{20, 60, 180}));
  EXPECT_EQ(defaults.metric, config::PruneMetric::val_loss);
  EXPECT_EQ(reached_rung(defaults, 19), -1);
  EXPECT_EQ(reached_rung(defaults, 60), 1);
  EXPECT_EQ(reached_rung(defaults, 540), 3);
}

// A run's metric after `epoch` epochs: (7·run mod 12 + 1) / epoch, so that at the first rung the order is runs 0, 7,
// 2, 9, 4, 11, 6, 1, 8, 3, 10, 5; run 9 improves fivefold after epoch 4 and leads from then on.
double metric_of(int64_t run, int64_t epoch) {
  const double late = run == 9 ? 0.2 : 1.0;
  return static_cast<double>((run * 7) % 12 + 1) * (epoch > 4 ? late : 1.0) / static_cast<double>(epoch);
}

struct Outcome {
  std::map<int64_t, int64_t> stopped_at;  // run -> epochs trained
  std::set<std::string> decisions;        // pruning.tsv's lines
};

// Drives a pruner to the end, reporting each batch of jobs in the order `reverse` says.
Outcome drive(const config::Config& config, bool reverse, int64_t pack) {
  const std::string state = std::filesystem::temp_directory_path() / ("pruning_test_" + std::to_string(getpid()));
  std::filesystem::remove(state);
  PriorWork prior;
  const size_t n = config.runs.size();
  prior.finished.assign(n, 0);
  prior.checkpointed.assign(n, 0);
  prior.checkpoint_epoch.assign(n, 0);
  prior.checkpoint_batch.assign(n, 0);
  const Packing packing = [pack](const std::vector<int64_t>& runs) {
    std::vector<std::vector<int64_t>> jobs;
    for (size_t i = 0; i < runs.size(); i += static_cast<size_t>(pack))
      jobs.emplace_back(runs.begin() + static_cast<std::ptrdiff_t>(i),
                        runs.begin() + static_cast<std::ptrdiff_t>(std::min(runs.size(), i + pack)));
    return jobs;
  };
  Pruner pruner(config, prior, packing, state, [](const std::string&) {});
  Outcome outcome;
  for (;;) {
    std::vector<JobSpec> jobs;
    JobSpec job;
    while (pruner.next(&job) == JobSource::Next::job) jobs.push_back(job);
    if (jobs.empty()) break;
    if (reverse) std::reverse(jobs.begin(), jobs.end());
    for (const auto& j : jobs)
      for (const int64_t run : j.runs) {
        RunSummary s;
        s.index = run;
        s.epochs_run = j.pause_after_epoch > 0 ? j.pause_after_epoch : config.prune.epochs;
        s.status = j.prune                               ? records::RunStatus::pruned
                   : j.pause_after_epoch > 0 && !j.prune ? records::RunStatus::paused
                                                         : records::RunStatus::done;
        s.metric = metric_of(run, s.epochs_run);
        if (s.status != records::RunStatus::paused) outcome.stopped_at[run] = s.epochs_run;
        pruner.finished(s);
      }
  }
  std::ifstream in(state);
  for (std::string line; std::getline(in, line);) outcome.decisions.insert(line);
  std::filesystem::remove(state);
  return outcome;
}

TEST(Pruner, AshaKeepsTheBestThirdOfEachRungWhateverTheReportOrderAndPacking) {
  const auto config = sweep_of("{method: asha, min_epochs: 4}");
  const Outcome forward = drive(config, false, 1), backward = drive(config, true, 5);
  EXPECT_EQ(forward.decisions, backward.decisions);
  EXPECT_EQ(forward.stopped_at, backward.stopped_at);
  // Rung 4: the best 12/3 = 4 are runs 0, 7, 2, 9; rung 12: the best max(1, 4/3) = 1 is run 9, which improved.
  std::map<int64_t, int64_t> expected;
  for (int64_t r = 0; r < 12; ++r) expected[r] = 4;
  expected[0] = expected[7] = expected[2] = 12;
  expected[9] = 36;
  EXPECT_EQ(forward.stopped_at, expected);
  EXPECT_EQ(forward.decisions.size(), 1u + 12u + 4u);  // the header, 12 reports at rung 0, 4 at rung 1
}

TEST(Pruner, MedianStopsTheRunsWorseThanTheMedianOfTheOthers) {
  const auto config = sweep_of("{method: median, min_epochs: 12}");  // checks at 12 and 24
  const Outcome forward = drive(config, false, 1), backward = drive(config, true, 4);
  EXPECT_EQ(forward.stopped_at, backward.stopped_at);
  // At epoch 12 (numerators 0.8, 1, 2, 3, 5, 6, 7, ...: runs 9, 0, 7, 2, 4, 11, 6, ...) run 11's 6 is not above the
  // median of the other eleven (7), run 6's 7 is above theirs (6): six continue. At 24, of 0.8, 1, 2, 3, 5, 6 the
  // first three are not above the median of the other five: runs 9, 0, 7 train to the end.
  std::map<int64_t, int64_t> expected;
  for (int64_t r = 0; r < 12; ++r) expected[r] = 12;
  expected[2] = expected[4] = expected[11] = 24;
  expected[9] = expected[0] = expected[7] = 36;
  EXPECT_EQ(forward.stopped_at, expected);
}

TEST(Pruner, AsyncAshaPromotesAsSoonAsARunRanksInTheBestThirdSoFar) {
  const auto config = sweep_of("{method: asha, min_epochs: 4, async: true}");
  const Outcome outcome = drive(config, false, 1);
  int64_t finished = 0;
  for (const auto& [run, epochs] : outcome.stopped_at) finished += epochs == 36 ? 1 : 0;
  EXPECT_GE(finished, 1);
  EXPECT_EQ(outcome.stopped_at.size(), 12u);  // every run ends: pruned, or trained to the end
}

}  // namespace
}  // namespace gradfit::sweep
