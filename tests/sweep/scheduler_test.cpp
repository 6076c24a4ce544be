// The sweep scheduler and a whole sweep through run_app, under `mpiexec -n 4` (ctest), with groups of 2 ranks.
#include "sweep/scheduler.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "app.h"
#include "common/error.h"
#include "io/h5.h"

namespace gradfit::sweep {
namespace {

const parallel::Comm& world() {
  static const parallel::Comm comm(MPI_COMM_WORLD);
  return comm;
}

// Records what rank 0 is told.
class RecordingReporter : public Reporter {
 public:
  void started(int64_t index, int) override { started_order.push_back(index); }
  void finished(const RunSummary& s, int) override { finished_runs.push_back(s); }
  void in_flight(const std::vector<RunProgress>&) override {}
  std::vector<int64_t> started_order;
  std::vector<RunSummary> finished_runs;
};

// Sums `counts` over all ranks.
std::vector<double> summed(std::vector<double> counts) {
  world().allreduce_sum(counts.data(), static_cast<int64_t>(counts.size()));
  return counts;
}

// Jobs of one run and ensembles of several, on groups of two ranks: every run is trained by exactly one group, its
// summary reaches rank 0 with its index, and the progress of every member is reported.
TEST(Scheduler, GroupsOfTwoRunEveryRunExactlyOnce) {
  ASSERT_EQ(world().size(), 4) << "run under mpiexec -n 4";
  const int runs = 13;
  const std::vector<std::vector<int64_t>> jobs{{0, 1, 2}, {3}, {4, 5}, {6}, {7, 8, 9, 10}, {11}, {12}};
  std::vector<double> costs;
  for (size_t j = 0; j < jobs.size(); ++j) costs.push_back(static_cast<double>((j * 7) % 5));
  std::vector<double> by_rank(runs, 0.0), by_leader(runs, 0.0), group_sizes(runs, 0.0);
  RecordingReporter reporter;
  run_all(
      world(), /*ranks_per_run=*/2, jobs, costs,
      [&](const std::vector<int64_t>& indices, const parallel::Comm& group, const train::TrainHooks& hooks) {
        std::vector<RunSummary> summaries;
        for (const int64_t index : indices) {
          by_rank[index] += 1;
          if (group.is_root()) {
            by_leader[index] += 1;
            group_sizes[index] = group.size();
          }
        }
        for (int step = 0; step < 5; ++step) {  // a little work, with the hooks a trainer would call
          std::this_thread::sleep_for(std::chrono::milliseconds(2 + indices.front() % 3));
          if (hooks.between_steps) hooks.between_steps();
        }
        for (size_t member = 0; member < indices.size(); ++member) {
          if (hooks.on_epoch) hooks.on_epoch(member, records::EpochRecord{1, 1.0, 0.5, 0, 0, 0});
          RunSummary s;
          s.status =
              indices[member] == 3 || indices[member] == 8 ? records::RunStatus::diverged : records::RunStatus::done;
          s.epochs_run = 1;
          s.final_loss = static_cast<double>(indices[member]);
          summaries.push_back(s);
        }
        return summaries;
      },
      reporter);
  const auto ranks = summed(by_rank), leaders = summed(by_leader), sizes = summed(group_sizes);
  for (int i = 0; i < runs; ++i) {
    EXPECT_EQ(ranks[i], 2.0) << "run " << i;    // both ranks of one group
    EXPECT_EQ(leaders[i], 1.0) << "run " << i;  // exactly one group
    EXPECT_EQ(sizes[i], 2.0) << "run " << i;
  }
  if (world().is_root()) {
    EXPECT_EQ(reporter.started_order.size(), static_cast<size_t>(runs));
    ASSERT_EQ(reporter.finished_runs.size(), static_cast<size_t>(runs));
    for (const auto& s : reporter.finished_runs) {
      EXPECT_EQ(s.final_loss, static_cast<double>(s.index));  // the summary travelled with its run
      EXPECT_EQ(s.status, s.index == 3 || s.index == 8 ? records::RunStatus::diverged : records::RunStatus::done);
    }
  }
}

TEST(Scheduler, OneGroupOfAllRanksTakesTheMostExpensiveFirst) {
  const std::vector<std::vector<int64_t>> jobs{{0}, {1}, {3, 5}, {4}};  // run 2 is not among them (finished)
  const std::vector<double> costs{1, 5, 5, 0};
  std::vector<int64_t> order;
  RecordingReporter reporter;
  run_all(
      world(), /*ranks_per_run=*/0, jobs, costs,
      [&](const std::vector<int64_t>& indices, const parallel::Comm& group, const train::TrainHooks&) {
        EXPECT_EQ(group.size(), world().size());
        order.insert(order.end(), indices.begin(), indices.end());
        return std::vector<RunSummary>(indices.size());
      },
      reporter);
  EXPECT_EQ(order, (std::vector<int64_t>{1, 3, 5, 0, 4}));  // by cost, ties in the jobs' order
  if (world().is_root()) {
    EXPECT_EQ(reporter.started_order, order);
  }
}

// One group's job fails (a CollectiveError on every rank of the group) while the others train: every rank learns
// the failure, the groups in flight are told to stop and come back "interrupted", no job starts after it, and no
// message is left behind. For groups of 1 and 2 ranks, the failing group being the coordinator's or the last.
TEST(Scheduler, AFailedJobStopsTheOtherGroupsAndReachesEveryRank) {
  ASSERT_EQ(world().size(), 4) << "run under mpiexec -n 4";
  for (const int ranks_per_run : {1, 2}) {
    const int groups = group_count(world().size(), ranks_per_run);
    for (const int failing : {0, groups - 1}) {
      const std::vector<std::vector<int64_t>> jobs{{0}, {1}, {2, 3}, {4}, {5}, {6}, {7}, {8}};
      const std::vector<double> costs(jobs.size(), 1.0);
      const int my_group = world().rank() / ranks_per_run;
      const std::string message = "run " + std::to_string(failing) + ": injected";
      RecordingReporter reporter;
      const auto started = std::chrono::steady_clock::now();
      const auto failure = run_all(
          world(), ranks_per_run, jobs, costs,
          [&](const std::vector<int64_t>& indices, const parallel::Comm& group, const train::TrainHooks& hooks) {
            // The failing group fails its first job after 200 steps, when every group has a job in flight.
            const int steps = my_group == failing ? 200 : 20000;  // 20 s at most: "done" means it was never stopped
            bool stop = false;
            for (int step = 0; step < steps && !stop; ++step) {
              std::this_thread::sleep_for(std::chrono::milliseconds(1));
              double flag = hooks.stop_requested && hooks.stop_requested() ? 1 : 0;
              group.allreduce_sum(&flag, 1);  // the root's request becomes the group's, as in the trainer
              stop = flag > 0;
              if (hooks.between_steps) hooks.between_steps();
            }
            if (my_group == failing) throw CollectiveError(message);  // on every rank of the group
            std::vector<RunSummary> summaries(indices.size());
            for (auto& s : summaries) s.status = stop ? records::RunStatus::interrupted : records::RunStatus::done;
            return summaries;
          },
          reporter);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      ASSERT_TRUE(failure.has_value()) << "rank " << world().rank();
      EXPECT_EQ(*failure, message);
      EXPECT_LT(seconds, 10.0);
      if (world().is_root()) {
        EXPECT_LE(reporter.started_order.size(), static_cast<size_t>(groups) + 1);  // at most one job per group
        EXPECT_GE(reporter.finished_runs.size(), static_cast<size_t>(groups) - 1);  // the others, stopped
        for (const auto& s : reporter.finished_runs)
          EXPECT_EQ(s.status, records::RunStatus::interrupted) << "run " << s.index;
      }
      MPI_Barrier(MPI_COMM_WORLD);
      int waiting = 0;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &waiting, MPI_STATUS_IGNORE);
      EXPECT_EQ(waiting, 0) << "a message was left behind on rank " << world().rank();
    }
  }
}

TEST(Scheduler, GroupCounts) {
  EXPECT_EQ(group_count(8, 2), 4);
  EXPECT_EQ(group_count(8, 3), 3);  // 3 + 3 + 2
  EXPECT_EQ(group_count(8, 0), 1);
  EXPECT_EQ(group_count(2, 8), 1);  // clamped to the world
}

// A whole sweep through run_app: 6 runs on 2 groups of 2 ranks, one of which diverges; the rest finish and every
// run is in the results file once.
TEST(SweepJob, ADivergingRunIsRecordedWhileTheOthersFinish) {
  double stamp = world().is_root() ? static_cast<double>(::getpid()) : 0;
  world().broadcast(&stamp, sizeof(stamp));
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / ("gradfit_sweepjob_" + std::to_string(static_cast<long>(stamp)));
  if (world().is_root()) {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "sweep.yaml") << "name: job\n"
                                         "ranks_per_run: 2\n"
                                         "data: {target: quadratic, P: [[2, 0.5], [0.5, 1]]}\n"
                                         "model: {widths: [8, 8], activation: softplus}\n"
                                         "optimizer: {name: sgd}\n"
                                         "train: {epochs: 40, batch_size: 25}\n"
                                         "sweep:\n"
                                         "  grid:\n"
                                         "    optimizer.lr: [0.001, 1000.0, 0.01]\n"
                                         "  repeats: 2\n";
  }
  MPI_Barrier(MPI_COMM_WORLD);
  AppOptions options;
  options.config_path = (dir / "sweep.yaml").string();
  options.out_dir = (dir / "out").string();
  options.progress = "lines";
  ASSERT_EQ(run_app(options, world()), 0);
  if (!world().is_root()) return;

  const auto file = io::File::open_read_only((dir / "out" / "results.h5").string());
  const auto runs = file.children("runs");
  ASSERT_EQ(runs.size(), 6u);
  int diverged = 0;
  for (const auto& name : runs) {
    const hid_t group = H5Gopen2(file.id(), ("runs/" + name).c_str(), H5P_DEFAULT);
    char* status = nullptr;
    const hid_t attr = H5Aopen(group, "status", H5P_DEFAULT);
    const hid_t type = H5Aget_type(attr);
    H5Aread(attr, type, &status);
    int64_t ranks = 0, epochs_run = 0;
    const hid_t ranks_attr = H5Aopen(group, "ranks", H5P_DEFAULT);
    H5Aread(ranks_attr, H5T_NATIVE_INT64, &ranks);
    const hid_t epochs_attr = H5Aopen(group, "epochs_run", H5P_DEFAULT);
    H5Aread(epochs_attr, H5T_NATIVE_INT64, &epochs_run);
    const std::string s = status;
    H5free_memory(status);
    H5Aclose(epochs_attr), H5Aclose(ranks_attr), H5Tclose(type), H5Aclose(attr), H5Gclose(group);

    EXPECT_EQ(ranks, 2) << name;
    if (name.find("lr=1000") != std::string::npos) {
      EXPECT_EQ(s, "diverged") << name;
      EXPECT_LT(epochs_run, 40) << name;
      ++diverged;
    } else {
      EXPECT_EQ(s, "done") << name;
      EXPECT_EQ(epochs_run, 40) << name;
    }
  }
  EXPECT_EQ(diverged, 2);
  // Each run's own file stays (resume reads them); no checkpoint is left once every run has ended.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir / "out" / "runs"), {}), 6);
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir / "out" / "checkpoints"), {}), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gradfit::sweep
