#pragma once
// What a sweep prints on world rank 0 before and after its runs (the runs' own lines: sweep/console.h).
#include <cstdint>
#include <string>

#include "app_sweep.h"
#include "config/config.h"
#include "data/dataset.h"
#include "sweep/jobs.h"

namespace gradfit {

// "" or "s".
const char* plural(int64_t count);

// --dry-run: the runs, one line each; a run on a data file shows the n of its file (`layouts`).
void print_dry_run(const config::Config& config, const data::FileLayouts& layouts);
// The largest of the jobs' memory estimates per rank (train/memory.h), one line:
// "memory estimate, 2 ranks per run, cpu: run big needs ~12 GB of memory per rank (data shard 11 GB, ...)".
void print_memory_estimate(const std::vector<sweep::JobMemory>& jobs, int group_ranks, torch::Device device);
// The first lines: the sweep, its ranks, groups and threads, the nodes, and what an earlier invocation finished.
void print_start(const std::string& config_path, int ranks, const Sweep& s);
// sweep.prune's method, metric and rungs.
void print_pruning(const config::PruneSpec& prune);
// How many runs train as ensembles, where the plan packs any.
void print_ensembles(const Sweep& s);
// The last line of a sweep that a signal stopped with `unfinished` runs left (`exit_code`: what the job exits with).
void print_stopped(int64_t unfinished, int exit_code);

}  // namespace gradfit
