#pragma once
// The job's census of its nodes: the memory each rank may use, and one line per node for the start of the log.
#include <string>
#include <vector>

#include "parallel/comm.h"
#include "sweep/jobs.h"

namespace gradfit {

// The host memory each rank may use: a node's physical memory shared evenly by the job's ranks on that node (they
// all hold a shard and a model at once), the smallest share over the nodes. Collective over `world`.
sweep::MemoryBudget memory_budget(const parallel::Comm& world, const parallel::Comm::NodeLocal& node);

// "node gf-node1: ranks 0-1, 1 thread per rank, 25 GB memory (13 GB per rank)": one line per node, on world rank 0
// (empty elsewhere); `threads` is this rank's. Collective over `world`.
std::vector<std::string> node_lines(const parallel::Comm& world, int threads);

}  // namespace gradfit
