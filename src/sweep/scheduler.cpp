#include "sweep/scheduler.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <numeric>
#include <thread>

#include "common/error.h"
#include "sweep/wire.h"

namespace gradfit::sweep {
namespace {

using Clock = std::chrono::steady_clock;

int clamp_ranks(int world_size, int ranks_per_run) {
  return ranks_per_run <= 0 ? world_size : std::min(ranks_per_run, world_size);
}

// World rank 0's bookkeeping: where jobs come from, the job each group is training, the groups waiting for one,
// the runs in flight, and the first failure.
class Coordinator {
 public:
  Coordinator(const parallel::Comm& world, int ranks_per_group, int own_group, JobSource& source, Reporter& reporter,
              std::function<bool()> stop_requested)
      : world_(world),
        ranks_per_group_(ranks_per_group),
        groups_(group_count(world.size(), ranks_per_group)),
        own_group_(own_group),
        source_(source),
        reporter_(reporter),
        stop_requested_(std::move(stop_requested)),
        runs_of_group_(static_cast<size_t>(groups_)),
        stop_sent_(static_cast<size_t>(groups_), 0) {}

  // The next job for `group`, whose previous job (if any) is over: a job, none yet (wait), or none ever.
  JobSource::Next take(int group, JobSpec* job) {
    runs_of_group_[group].clear();
    if (stop_requested_ && stop_requested_()) stopped_ = true;
    if (stopped_) return JobSource::Next::none;
    const JobSource::Next next = source_.next(job);
    if (next != JobSource::Next::job) return next;
    runs_of_group_[group] = job->runs;
    const auto now = Clock::now();
    for (const int64_t index : job->runs) {
      RunProgress p;
      p.index = index;
      p.group = group;
      in_flight_[index] = {p, now};
      reporter_.started(index, group);
    }
    return next;
  }

  void finished(const RunSummary& summary, int group) {
    if (summary.status == records::RunStatus::interrupted) stopped_ = true;  // the job is being stopped
    in_flight_.erase(summary.index);
    if (summary.status == records::RunStatus::paused)
      reporter_.paused(summary, group);
    else
      reporter_.finished(summary, group);
    source_.finished(summary);
  }

  // `group`'s job failed (on every rank of the group). The first failure stops the sweep: no more jobs, and every
  // other group still training is told to checkpoint and stop.
  void failed(const std::string& message, int group) {
    for (const int64_t index : runs_of_group_[group]) in_flight_.erase(index);
    runs_of_group_[group].clear();
    if (failure_) return;
    failure_ = message;
    stopped_ = true;
    for (int g = 0; g < groups_; ++g) {
      if (g == own_group_ || runs_of_group_[g].empty() || stop_sent_[g]) continue;  // its own group asks failure()
      wire::send(world_, wire::encode_stop(), g * ranks_per_group_, wire::kStop);
      stop_sent_[g] = 1;
    }
  }

  const std::optional<std::string>& failure() const { return failure_; }

  void progress(const RunProgress& p) {
    const auto it = in_flight_.find(p.index);
    if (it == in_flight_.end()) return;
    it->second.progress.epoch = p.epoch;
    it->second.progress.loss = p.loss;
    it->second.progress.rel_grad_error = p.rel_grad_error;
  }

  // Answers every waiting message, then the groups waiting for a job; cheap when there is nothing to do.
  void serve() {
    int source = 0, tag = 0;
    while (world_.poll(&source, &tag)) answer(source, tag);
    answer_waiting();
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

  void answer(int source, int tag) {
    switch (tag) {
      case wire::kProgress: progress(wire::decode_progress(wire::receive(world_, source, wire::kProgress))); return;
      case wire::kFinished: {  // a run of the group's job (sent before the group's next request)
        const auto f = wire::decode_finished(wire::receive(world_, source, wire::kFinished));
        finished(f.summary, f.group);
        return;
      }
      case wire::kFailed: failed(world_.receive_text(source, wire::kFailed), source / ranks_per_group_); return;
      case wire::kRequest: {  // a group finished its job (if any) and wants the next
        const int group = wire::decode_request(wire::receive(world_, source, wire::kRequest));
        JobSpec job;
        const JobSource::Next next = take(group, &job);
        if (next == JobSource::Next::wait)
          waiting_.push_back(group);
        else
          assign(group, next == JobSource::Next::job ? &job : nullptr);
        return;
      }
      default:
        throw Error("sweep coordinator: unexpected message (tag " + std::to_string(tag) + ") from rank " +
                    std::to_string(source));
    }
  }

  // The groups whose request found no job yet, in the order they asked.
  void answer_waiting() {
    for (size_t w = 0; w < waiting_.size();) {
      JobSpec job;
      const JobSource::Next next = take(waiting_[w], &job);
      if (next == JobSource::Next::wait) {
        ++w;
        continue;
      }
      assign(waiting_[w], next == JobSource::Next::job ? &job : nullptr);
      waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(w));
    }
  }

  // Answers `group`'s request: `job`, or nothing left (nullptr).
  void assign(int group, const JobSpec* job) {
    wire::Assignment assignment;
    assignment.job = job ? 1 : -1;
    assignment.stop_sent = stop_sent_[group] != 0;
    stop_sent_[group] = 0;
    if (!job) ++groups_done_;
    const int root = group * ranks_per_group_;
    wire::send(world_, wire::encode_assignment(assignment), root, wire::kAssign);
    if (job) wire::send_job(world_, *job, root);
  }

  const parallel::Comm& world_;
  int ranks_per_group_;
  int groups_;
  int own_group_;
  JobSource& source_;
  Reporter& reporter_;
  std::function<bool()> stop_requested_;
  bool stopped_ = false;
  std::optional<std::string> failure_;
  std::map<int64_t, InFlight> in_flight_;
  std::vector<std::vector<int64_t>> runs_of_group_;  // per group: the runs of the job it trains
  std::vector<uint8_t> stop_sent_;                   // per group: told to stop since its last request
  std::vector<int> waiting_;                         // groups whose request waits for a job
  int groups_done_ = 0;                              // other groups told there is nothing left
};

// One rank's part in the sweep, by its place: world rank 0 coordinates and leads its own group; the root of every
// other group asks for jobs and reports; the other ranks only train.
class Role {
 public:
  virtual ~Role() = default;
  // On the group's root: the next job, or none (the group is done).
  virtual std::optional<JobSpec> next_job() { return std::nullopt; }
  // The hooks for the trainer of the job of `runs`.
  virtual train::TrainHooks hooks(const std::vector<int64_t>& runs) {
    (void)runs;
    return {};
  }
  virtual void finished(const RunSummary& summary) { (void)summary; }
  // The group's job failed: `message` is the same on every rank of the group.
  virtual void failed(const std::string& message) { (void)message; }
  // After the group's last job.
  virtual void end() {}
  // On world rank 0: the first failure of any group.
  virtual std::optional<std::string> failure() const { return std::nullopt; }
};

class CoordinatorRole : public Role {
 public:
  CoordinatorRole(std::unique_ptr<Coordinator> coordinator, int group)
      : coordinator_(std::move(coordinator)), group_(group) {}
  std::optional<JobSpec> next_job() override {
    for (;;) {  // while the source has no job yet, the other groups are served until it has one
      coordinator_->serve();
      JobSpec job;
      const JobSource::Next next = coordinator_->take(group_, &job);
      if (next == JobSource::Next::job) return job;
      if (next == JobSource::Next::none) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  train::TrainHooks hooks(const std::vector<int64_t>& runs) override {
    train::TrainHooks hooks;
    Coordinator* c = coordinator_.get();
    const int group = group_;
    hooks.between_steps = [c] { c->serve(); };
    hooks.on_epoch = [c, &runs, group](size_t member, const records::EpochRecord& r) {
      c->progress(RunProgress{runs[member], group, r.epoch, r.train_loss, r.rel_grad_error, 0});
    };
    hooks.stop_requested = [c] { return c->failure().has_value(); };  // another group failed
    return hooks;
  }
  void finished(const RunSummary& summary) override { coordinator_->finished(summary, group_); }
  void failed(const std::string& message) override { coordinator_->failed(message, group_); }
  void end() override { coordinator_->drain(); }
  std::optional<std::string> failure() const override { return coordinator_->failure(); }

 private:
  std::unique_ptr<Coordinator> coordinator_;
  int group_;
};

// The root of a group other than the coordinator's.
class LeaderRole : public Role {
 public:
  LeaderRole(const parallel::Comm& world, int group) : world_(world), group_(group) {}

  std::optional<JobSpec> next_job() override {
    wire::send(world_, wire::encode_request(group_), 0, wire::kRequest);
    const auto assignment = wire::decode_assignment(wire::receive(world_, 0, wire::kAssign));
    // A stop sent while the job ran but after its last step: take it now, so that no message is left behind.
    if (assignment.stop_sent && !stop_received_) wire::receive(world_, 0, wire::kStop);
    stop_received_ = false;
    if (assignment.job < 0) return std::nullopt;
    return wire::receive_job(world_, 0);
  }

  train::TrainHooks hooks(const std::vector<int64_t>& runs) override {
    runs_ = &runs;
    epoch_ = -1;
    train::TrainHooks hooks;
    hooks.on_epoch = [this](size_t member, const records::EpochRecord& r) { progress(member, r); };
    hooks.stop_requested = [this] { return stop_arrived(); };
    return hooks;
  }

  void finished(const RunSummary& summary) override {
    wire::send(world_, wire::encode_finished({group_, summary}), 0, wire::kFinished);
  }
  void failed(const std::string& message) override { world_.send_text(message, 0, wire::kFailed); }

 private:
  static constexpr double kProgressSeconds = 2.0;

  // Every kProgressSeconds, one epoch's records of all the job's runs.
  void progress(size_t member, const records::EpochRecord& r) {
    if (r.epoch != epoch_) {
      epoch_ = r.epoch;
      sending_ = std::chrono::duration<double>(Clock::now() - last_sent_).count() >= kProgressSeconds;
      if (sending_) last_sent_ = Clock::now();
    }
    if (!sending_) return;
    const RunProgress p{(*runs_)[member], group_, r.epoch, r.train_loss, r.rel_grad_error, 0};
    wire::send(world_, wire::encode_progress(p), 0, wire::kProgress);
  }

  // Whether the coordinator asked this group to stop (a non-blocking probe; the message is taken once).
  bool stop_arrived() {
    if (!stop_received_ && world_.waiting(0, wire::kStop)) {
      wire::receive(world_, 0, wire::kStop);
      stop_received_ = true;
    }
    return stop_received_;
  }

  const parallel::Comm& world_;
  int group_;
  const std::vector<int64_t>* runs_ = nullptr;
  int64_t epoch_ = -1;
  bool sending_ = false;
  Clock::time_point last_sent_ = Clock::now();
  bool stop_received_ = false;
};

// Rank 0's failure, sent to every rank (collective over `world`).
std::optional<std::string> share_failure(const parallel::Comm& world, const std::optional<std::string>& failure) {
  int64_t length = failure ? static_cast<int64_t>(failure->size()) : -1;
  world.broadcast(&length, sizeof(length));
  if (length < 0) return std::nullopt;
  std::string message = failure.value_or("");
  message.resize(static_cast<size_t>(length));
  world.broadcast(message.data(), length);
  return message;
}

}  // namespace

int group_count(int world_size, int ranks_per_run) {
  const int k = clamp_ranks(world_size, ranks_per_run);
  return (world_size + k - 1) / k;
}

PlannedJobs::PlannedJobs(std::vector<JobSpec> jobs, const std::vector<double>& costs) : jobs_(std::move(jobs)) {
  order_.resize(jobs_.size());
  std::iota(order_.begin(), order_.end(), 0);
  std::stable_sort(order_.begin(), order_.end(), [&](size_t a, size_t b) { return costs[a] > costs[b]; });
}

JobSource::Next PlannedJobs::next(JobSpec* job) {
  if (taken_ == order_.size()) return Next::none;
  *job = jobs_[order_[taken_++]];
  return Next::job;
}

std::optional<std::string> run_jobs(const parallel::Comm& world, int ranks_per_run, JobSource* source,
                                    const JobFunction& run_job, Reporter& reporter,
                                    const std::function<bool()>& stop_requested) {
  const int k = clamp_ranks(world.size(), ranks_per_run);
  const int color = world.rank() / k;
  const parallel::SplitComm split(world, color, world.rank());
  const parallel::Comm& group = split.comm();
  std::unique_ptr<Role> role;
  if (world.is_root())
    role = std::make_unique<CoordinatorRole>(
        std::make_unique<Coordinator>(world, k, color, *source, reporter, stop_requested), color);
  else if (group.is_root())
    role = std::make_unique<LeaderRole>(world, color);
  else
    role = std::make_unique<Role>();

  for (;;) {
    std::optional<JobSpec> job = group.is_root() ? role->next_job() : std::nullopt;
    wire::share_job(group, job);
    if (!job) break;
    try {
      std::vector<RunSummary> summaries = run_job(*job, group, role->hooks(job->runs));
      for (size_t i = 0; i < summaries.size(); ++i) {
        summaries[i].index = job->runs[i];
        role->finished(summaries[i]);
      }
    } catch (const CollectiveError& e) {  // every rank of the group is here, with the same message
      role->failed(e.what());
    }
  }
  role->end();
  return share_failure(world, role->failure());
}

std::optional<std::string> run_all(const parallel::Comm& world, int ranks_per_run,
                                   const std::vector<std::vector<int64_t>>& jobs, const std::vector<double>& costs,
                                   const RunFunction& run_job, Reporter& reporter,
                                   const std::function<bool()>& stop_requested) {
  std::vector<JobSpec> specs;
  for (const auto& runs : jobs) specs.push_back(JobSpec{runs, -1, false, 0, false});
  PlannedJobs list(specs, costs);
  const JobFunction adapter = [&run_job](const JobSpec& job, const parallel::Comm& group,
                                         const train::TrainHooks& hooks) { return run_job(job.runs, group, hooks); };
  return run_jobs(world, ranks_per_run, world.is_root() ? &list : nullptr, adapter, reporter, stop_requested);
}

}  // namespace gradfit::sweep
