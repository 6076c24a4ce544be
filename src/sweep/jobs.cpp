#include "sweep/jobs.h"

#include <algorithm>
#include <map>
#include <string>

#include "common/error.h"
#include "data/dataset.h"
#include "model/mlp.h"
#include "train/memory.h"
#include "train/trainer.h"

namespace gradfit::sweep {
namespace {

// The parameters of a run's model (its input dimension taken as 1 where the data file says it).
double parameters(const config::RunSpec& run) {
  return static_cast<double>(model::parameter_count(run.model, std::max<int64_t>(1, run.data.dim)));
}

// The runs of a sweep that share an ensemble key, in the sweep's order, and the keys in order of appearance.
struct EnsembleClasses {
  std::map<std::string, std::vector<int64_t>> members;
  std::vector<std::string> order;
};

// Packs runs into jobs, one key at a time.
class Packer {
 public:
  // `todo`: the runs to pack, spread over `groups`.
  Packer(const config::Config& config, int64_t todo, int groups, int group_ranks, torch::Device device)
      : config_(config),
        group_ranks_(group_ranks),
        budget_(device.is_cuda() ? 16e9 : 64e6),
        balanced_(std::max<int64_t>((todo + groups - 1) / std::max(groups, 1), 1)) {}

  // A job of `runs` as they were saved, resuming from the checkpoint named after run `source`.
  void add_resumed(int64_t source, const std::vector<int64_t>& runs) { add(runs, source); }
  // A run that trains alone.
  void add_alone(int64_t run) { add({run}, -1); }
  // The runs of one ensemble key, cut into near-equal ensembles: the first (count % jobs) get one more.
  void add_class(const std::vector<int64_t>& members) {
    const int64_t size = ensemble_size(config_.runs[members.front()]);
    const auto count = static_cast<int64_t>(members.size());
    const int64_t jobs = (count + size - 1) / size;
    for (int64_t j = 0, first = 0; j < jobs; ++j) {
      const int64_t length = count / jobs + (j < count % jobs ? 1 : 0);
      add(std::vector<int64_t>(members.begin() + first, members.begin() + first + length), -1);
      first += length;
    }
  }

  SweepPlan take() { return std::move(plan_); }

 private:
  static constexpr int64_t kMostAutomatic = 64;

  void add(std::vector<int64_t> runs, int64_t source) {
    double cost = 0;
    for (const int64_t i : runs) cost += estimated_cost(config_.runs[i]);
    plan_.jobs.push_back(std::move(runs));
    plan_.sources.push_back(source);
    plan_.costs.push_back(cost);
  }

  // The runs to a job for runs like `run`: config.ensemble_size, or automatic (0).
  int64_t ensemble_size(const config::RunSpec& run) {
    if (config_.ensemble_size != 0) return config_.ensemble_size;
    int64_t rows = config::analytic_sample_count(run.data);
    if (rows < 0) rows = data::layout_of(layouts_, run.data.path).rows;
    const double flops = step_flops(run, rows, group_ranks_);
    const int64_t size = std::clamp<int64_t>(static_cast<int64_t>(budget_ / std::max(flops, 1.0)), 1, kMostAutomatic);
    return std::min(size, balanced_);
  }

  const config::Config& config_;
  int group_ranks_;
  double budget_;  // flops per rank and step
  int64_t balanced_ = 1;
  data::FileLayouts layouts_;
  SweepPlan plan_;
};

}  // namespace

double estimated_cost(const config::RunSpec& run) {
  const double samples = static_cast<double>(std::max<int64_t>(1, config::analytic_sample_count(run.data)));
  return static_cast<double>(run.train.epochs) * samples * parameters(run);
}

double step_flops(const config::RunSpec& run, int64_t rows, int group_ranks) {
  const int64_t batch = run.train.batch_size > 0 ? std::min(run.train.batch_size, rows) : rows;
  return 12.0 * parameters(run) * static_cast<double>((batch + group_ranks - 1) / group_ranks);
}

namespace {

// Packs `runs` (none resumed) into `packer`: each run alone, or with the others of its ensemble key.
void pack_fresh(const config::Config& config, const std::vector<int64_t>& runs, Packer& packer) {
  EnsembleClasses classes;
  for (const int64_t i : runs) {
    const std::string key = train::ensemble_key(config.runs[i]);
    if (key.empty() || config.ensemble_size == 1) {
      packer.add_alone(i);
      continue;
    }
    if (!classes.members.count(key)) classes.order.push_back(key);
    classes.members[key].push_back(i);
  }
  for (const auto& key : classes.order) packer.add_class(classes.members[key]);
}

}  // namespace

SweepPlan plan_jobs(const config::Config& config, const PriorWork& prior, int groups, int group_ranks,
                    torch::Device device) {
  int64_t todo = 0;
  for (size_t i = 0; i < config.runs.size(); ++i) todo += prior.finished[i] ? 0 : 1;
  Packer packer(config, todo, groups, group_ranks, device);
  for (const auto& [source, runs] : prior.checkpoints) packer.add_resumed(source, runs);
  std::vector<int64_t> fresh;
  for (int64_t i = 0; i < static_cast<int64_t>(config.runs.size()); ++i)
    if (!prior.finished[i] && !prior.checkpointed[i]) fresh.push_back(i);
  pack_fresh(config, fresh, packer);
  return packer.take();
}

std::vector<std::vector<int64_t>> pack_runs(const config::Config& config, const std::vector<int64_t>& runs, int groups,
                                            int group_ranks, torch::Device device) {
  Packer packer(config, static_cast<int64_t>(runs.size()), groups, group_ranks, device);
  pack_fresh(config, runs, packer);
  return packer.take().jobs;
}

std::string JobMemory::name() const {
  return "run " + run->name + (members > 1 ? " (in an ensemble of " + std::to_string(members) + ")" : "");
}

std::vector<JobMemory> estimate_jobs(const config::Config& config, int groups, int group_ranks, torch::Device device) {
  PriorWork fresh;
  fresh.finished.assign(config.runs.size(), 0);
  fresh.checkpointed.assign(config.runs.size(), 0);
  data::FileLayouts layouts;
  std::vector<JobMemory> estimates;
  for (const auto& job : plan_jobs(config, fresh, groups, group_ranks, device).jobs) {
    const config::RunSpec& run = config.runs[job.front()];
    train::DataShape shape{config::analytic_sample_count(run.data), run.data.dim, true, false};
    if (run.data.target == config::Target::file) {
      const auto& layout = data::layout_of(layouts, run.data.path);
      shape = {layout.rows, layout.dim, layout.has_values, layout.has_weights};
      shape.atoms = layout.atoms;
    }
    if (!run.data.test_path.empty()) {
      shape.test_rows = data::layout_of(layouts, run.data.test_path).rows;
      shape.test_atoms = data::layout_of(layouts, run.data.test_path).atoms;
    }
    const auto members = static_cast<int64_t>(job.size());
    estimates.push_back({&run, members, train::estimate_memory(run, shape, group_ranks, members, device)});
  }
  return estimates;
}

void check_memory(const config::Config& config, int groups, int group_ranks, torch::Device device,
                  const MemoryBudget& budget) {
  if (budget.per_rank <= 0) return;
  for (const auto& job : estimate_jobs(config, groups, group_ranks, device)) {
    if (job.need.total() <= budget.per_rank) continue;
    throw ConfigError(job.name() + " needs " + job.need.text() + "; " + budget.text);
  }
}

std::vector<JobSpec> job_specs(const SweepPlan& plan) {
  std::vector<JobSpec> specs;
  for (size_t j = 0; j < plan.jobs.size(); ++j) {
    JobSpec spec;
    spec.runs = plan.jobs[j];
    spec.source = plan.sources[j];
    specs.push_back(spec);
  }
  return specs;
}

EnsembleCounts count_ensembles(const SweepPlan& plan) {
  EnsembleCounts counts;
  for (const auto& job : plan.jobs) {
    const auto size = static_cast<int64_t>(job.size());
    if (size == 1) continue;
    ++counts.ensembles;
    counts.runs += size;
    counts.largest = std::max(counts.largest, size);
  }
  return counts;
}

}  // namespace gradfit::sweep
