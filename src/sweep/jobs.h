#pragma once
// Which runs train together: the jobs the scheduler hands out, a job being one run or an ensemble, with the cost
// model that orders them and sizes automatic ensembles.
#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"
#include "parallel/comm.h"
#include "sweep/output_folder.h"
#include "train/memory.h"

namespace gradfit::sweep {

// The jobs the runs left to do are packed into (plan_jobs), each with where it resumes from and what it costs.
struct SweepPlan {
  std::vector<std::vector<int64_t>> jobs;  // run indices
  std::vector<int64_t> sources;  // per job: the run its checkpoint file is named after, or -1 for a fresh start
  std::vector<double> costs;     // of each job, for the scheduler's order
};

// Relative cost of a run, to start the longest first: epochs × samples × parameters.
double estimated_cost(const config::RunSpec& run);

// One step's matrix work per rank of a run, in flops (12 per parameter and sample), on `rows` samples split over
// `group_ranks` ranks.
double step_flops(const config::RunSpec& run, int64_t rows, int group_ranks);

// Runs left to do that share train::ensemble_key are packed, at most `config.ensemble_size` to a job (0: as many
// as keep one step's work per rank within a budget that per-operation overheads no longer dominate, and no fewer
// jobs than `groups`); runs with a checkpoint resume as they were saved (alone, or as the ensemble that was saved).
// Each key's runs are cut into near-equal ensembles. One rank (it reads the data files' sizes).
SweepPlan plan_jobs(const config::Config& config, const PriorWork& prior, int groups, int group_ranks,
                    torch::Device device);

// `runs` (none resumed) cut into jobs as plan_jobs cuts a fresh start's, spread over `groups`. One rank.
std::vector<std::vector<int64_t>> pack_runs(const config::Config& config, const std::vector<int64_t>& runs, int groups,
                                            int group_ranks, torch::Device device);

// The host memory one rank may use: its node's physical memory shared evenly by the job's ranks on that node.
struct MemoryBudget {
  double per_rank = 0;  // bytes, the smallest share over the nodes; 0: unknown, nothing is checked
  std::string text;     // for a message: "this node has 24 GB for 2 ranks (12 GB each)"
};

// The memory one rank needs for a job as plan_jobs packs a fresh start: its first run and its size.
struct JobMemory {
  const config::RunSpec* run = nullptr;
  int64_t members = 1;
  train::MemoryEstimate need;
  // "run NAME", with " (in an ensemble of K)" for several members: how messages name the job.
  std::string name() const;
};

// Every job's estimate (train/memory.h), in plan_jobs' order. One rank (it reads the data files' sizes).
std::vector<JobMemory> estimate_jobs(const config::Config& config, int groups, int group_ranks, torch::Device device);

// Throws a ConfigError naming the first run whose job, as plan_jobs packs a fresh start, needs more memory per
// rank than `budget` (train/memory.h), with the estimate by part. One rank (it reads the data files' sizes).
void check_memory(const config::Config& config, int groups, int group_ranks, torch::Device device,
                  const MemoryBudget& budget);

// The plan's jobs as the scheduler hands them out.
std::vector<JobSpec> job_specs(const SweepPlan& plan);

// The ensembles (jobs of more than one run) of a plan.
struct EnsembleCounts {
  int64_t ensembles = 0;
  int64_t runs = 0;     // in ensembles
  int64_t largest = 0;  // runs in the largest
};
EnsembleCounts count_ensembles(const SweepPlan& plan);

}  // namespace gradfit::sweep
