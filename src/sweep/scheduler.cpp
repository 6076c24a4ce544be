#include "sweep/scheduler.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <numeric>
#include <thread>

namespace gradfit::sweep {
namespace {

using Clock = std::chrono::steady_clock;

// Control messages are small arrays of doubles (indices stay exact below 2^53).
constexpr int kMessageLength = 8;
enum Tag : int { kRequest = 7101, kAssign = 7102, kProgress = 7103, kFinished = 7104 };
int clamp_ranks(int world_size, int ranks_per_run) {
  return ranks_per_run <= 0 ? world_size : std::min(ranks_per_run, world_size);
}

// World rank 0's bookkeeping: the queue of jobs not yet started and the runs in flight.
class Coordinator {
 public:
  Coordinator(const parallel::Comm& world, int groups, const std::vector<std::vector<int64_t>>& jobs,
              const std::vector<double>& costs, Reporter& reporter, std::function<bool()> stop_requested)
      : world_(world), groups_(groups), jobs_(jobs), reporter_(reporter), stop_requested_(std::move(stop_requested)) {
    std::vector<int64_t> order(jobs.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return costs[a] > costs[b]; });
    queue_.assign(order.begin(), order.end());
  }

  // The next job for `group`, or -1 when none is left.
  int64_t take(int group) {
    if (stop_requested_ && stop_requested_()) stopped_ = true;
    if (queue_.empty() || stopped_) return -1;
    const int64_t job = queue_.front();
    queue_.pop_front();
    const auto now = Clock::now();
    for (const int64_t index : jobs_[job]) {
      RunProgress p;
      p.index = index;
      p.group = group;
      in_flight_[index] = {p, now};
      reporter_.started(index, group);
    }
    return job;
  }

  void finished(const RunSummary& summary, int group) {
    if (summary.status == records::RunStatus::interrupted) stopped_ = true;  // the job is being stopped: start nothing new
    in_flight_.erase(summary.index);
    reporter_.finished(summary, group);
  }

  void progress(int64_t index, int64_t epoch, double loss, double rel_grad_error) {
    const auto it = in_flight_.find(index);
    if (it == in_flight_.end()) return;
    it->second.progress.epoch = epoch;
    it->second.progress.loss = loss;
    it->second.progress.rel_grad_error = rel_grad_error;
  }

  // Answers every waiting message; cheap when there is none.
  void serve() {
    int source = 0, tag = 0;
    while (world_.poll(&source, &tag)) {
      double m[kMessageLength];
      world_.receive(m, kMessageLength, source, tag);
      const int group = static_cast<int>(m[0]);
      if (tag == kProgress) {
        progress(static_cast<int64_t>(m[1]), static_cast<int64_t>(m[2]), m[3], m[4]);
        continue;
      }
      if (tag == kFinished) {  // a run of the group's job (sent before the group's next request)
        RunSummary s;
        s.index = static_cast<int64_t>(m[1]);
        s.status = static_cast<records::RunStatus>(static_cast<int>(m[2]));
        s.epochs_run = static_cast<int64_t>(m[3]);
        s.final_loss = m[4];
        s.final_rel_grad_error = m[5];
        s.seconds = m[6];
        finished(s, group);
        continue;
      }
      // kRequest: a group finished its job (if any) and wants the next.
      double reply[kMessageLength] = {static_cast<double>(take(group))};
      if (reply[0] < 0) ++groups_done_;
      world_.send(reply, kMessageLength, source, kAssign);
    }
    std::vector<RunProgress> runs;
    for (auto& [index, f] : in_flight_) {
      f.progress.elapsed = std::chrono::duration<double>(Clock::now() - f.start).count();
      runs.push_back(f.progress);
    }
    reporter_.in_flight(runs);
  }

  // After its own group is done: serves the others until each has been told there is nothing left.
  void drain() {
    while (groups_done_ < groups_ - 1) {
      serve();
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

 private:
  struct InFlight {
    RunProgress progress;
    Clock::time_point start;
  };
  const parallel::Comm& world_;
  int groups_;
  const std::vector<std::vector<int64_t>>& jobs_;
  Reporter& reporter_;
  std::function<bool()> stop_requested_;
  bool stopped_ = false;
  std::deque<int64_t> queue_;
  std::map<int64_t, InFlight> in_flight_;
  int groups_done_ = 0;  // other groups told to stop
};

}  // namespace

int group_count(int world_size, int ranks_per_run) {
  const int k = clamp_ranks(world_size, ranks_per_run);
  return (world_size + k - 1) / k;
}

void run_all(const parallel::Comm& world, int ranks_per_run, const std::vector<std::vector<int64_t>>& jobs,
             const std::vector<double>& costs, const RunFunction& run_job, Reporter& reporter,
             const std::function<bool()>& stop_requested) {
  const int k = clamp_ranks(world.size(), ranks_per_run);
  const int color = world.rank() / k;
  const parallel::SplitComm split(world, color, world.rank());
  const parallel::Comm& group = split.comm();
  const bool coordinator = world.is_root();
  const bool leader = group.is_root();
  Coordinator* coord = nullptr;
  std::unique_ptr<Coordinator> owned;
  if (coordinator) {
    owned = std::make_unique<Coordinator>(world, group_count(world.size(), k), jobs, costs, reporter, stop_requested);
    coord = owned.get();
  }

  constexpr double kProgressSeconds = 2.0;
  for (;;) {
    int64_t next = -1;
    if (coordinator) {
      coord->serve();
      next = coord->take(color);
    } else if (leader) {
      const double request[kMessageLength] = {static_cast<double>(color)};
      world.send(request, kMessageLength, 0, kRequest);
      double reply[kMessageLength];
      world.receive(reply, kMessageLength, 0, kAssign);
      next = static_cast<int64_t>(reply[0]);
    }
    group.broadcast(&next, sizeof(next));
    if (next < 0) break;
    const std::vector<int64_t>& runs = jobs[static_cast<size_t>(next)];

    train::TrainHooks hooks;
    auto last_sent = Clock::now();
    if (coordinator) {
      hooks.between_steps = [coord] { coord->serve(); };
      hooks.on_epoch = [coord, &runs](size_t member, const records::EpochRecord& r) {
        coord->progress(runs[member], r.epoch, r.train_loss, r.rel_grad_error);
      };
    } else if (leader) {
      // Every kProgressSeconds, one epoch's records of all the job's runs.
      hooks.on_epoch = [&, epoch = int64_t{-1}, sending = false](size_t member, const records::EpochRecord& r) mutable {
        if (r.epoch != epoch) {
          epoch = r.epoch;
          sending = std::chrono::duration<double>(Clock::now() - last_sent).count() >= kProgressSeconds;
          if (sending) last_sent = Clock::now();
        }
        if (!sending) return;
        const double m[kMessageLength] = {static_cast<double>(color), static_cast<double>(runs[member]),
                                          static_cast<double>(r.epoch), r.train_loss, r.rel_grad_error};
        world.send(m, kMessageLength, 0, kProgress);
      };
    }
    std::vector<RunSummary> summaries = run_job(runs, group, hooks);
    for (size_t i = 0; i < summaries.size(); ++i) {
      auto& s = summaries[i];
      s.index = runs[i];
      if (coordinator) {
        coord->finished(s, color);
      } else if (leader) {
        const double m[kMessageLength] = {static_cast<double>(color),
                                          static_cast<double>(s.index),
                                          static_cast<double>(static_cast<int>(s.status)),
                                          static_cast<double>(s.epochs_run),
                                          s.final_loss,
                                          s.final_rel_grad_error,
                                          s.seconds};
        world.send(m, kMessageLength, 0, kFinished);
      }
    }
  }
  if (coordinator) coord->drain();
}

}  // namespace gradfit::sweep
