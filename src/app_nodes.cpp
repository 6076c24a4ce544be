#include "app_nodes.h"

#include <algorithm>
#include <limits>
#include <sstream>

#include "device/device.h"
#include "train/memory.h"

namespace gradfit {
namespace {

// "0-3,6": ranks as ranges.
std::string rank_ranges(const std::vector<int>& ranks) {
  std::string text;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    text += (text.empty() ? "" : ",") + std::to_string(ranks[i]) + (j > i ? "-" + std::to_string(ranks[j]) : "");
    i = j + 1;
  }
  return text;
}

// What one node gives the job, as its ranks see it.
struct NodeFigures {
  std::string host;
  std::vector<int> ranks;  // world ranks
  int fewest_threads = 0, most_threads = 0;
  int64_t memory = 0;  // bytes, 0: the system does not say
};

// Every rank's host, threads and node memory, grouped by host in the order of the nodes' first ranks: on world
// rank 0 (empty elsewhere). Collective.
std::vector<NodeFigures> gather_nodes(const parallel::Comm& world, int threads) {
  const auto texts = world.gather_texts(parallel::host_name() + "\n" + std::to_string(threads) + " " +
                                        std::to_string(device::physical_memory_bytes()));
  std::vector<NodeFigures> nodes;
  for (int r = 0; r < static_cast<int>(texts.size()); ++r) {
    std::istringstream in(texts[r]);
    NodeFigures rank;
    std::getline(in, rank.host);
    in >> rank.fewest_threads >> rank.memory;
    auto it = std::find_if(nodes.begin(), nodes.end(), [&rank](const NodeFigures& n) { return n.host == rank.host; });
    if (it == nodes.end())
      it = nodes.insert(nodes.end(), {rank.host, {}, rank.fewest_threads, rank.fewest_threads, rank.memory});
    it->ranks.push_back(r);
    it->fewest_threads = std::min(it->fewest_threads, rank.fewest_threads);
    it->most_threads = std::max(it->most_threads, rank.fewest_threads);
  }
  return nodes;
}

}  // namespace

// The host memory each rank may use: a node's physical memory shared evenly by the job's ranks on that node (they
// all hold a shard and a model at once), the smallest share over the nodes. Collective over `world`.
sweep::MemoryBudget memory_budget(const parallel::Comm& world, const parallel::Comm::NodeLocal& node) {
  const int64_t physical = device::physical_memory_bytes();
  const int64_t share = physical > 0 ? physical / node.size : std::numeric_limits<int64_t>::max();
  const int64_t least = world.allreduce_min(share);
  sweep::MemoryBudget budget;
  if (least == std::numeric_limits<int64_t>::max()) return budget;  // no node says
  budget.per_rank = static_cast<double>(least);
  const std::string each = train::bytes_text(budget.per_rank);
  if (share != least)
    budget.text = "the smallest share of a node's memory is " + each + " per rank";
  else if (node.size > 1)
    budget.text = "this node has " + train::bytes_text(static_cast<double>(physical)) + " for " +
                  std::to_string(node.size) + " ranks (" + each + " each)";
  else
    budget.text = "this node has " + each;
  return budget;
}

// "node gf-node1: ranks 0-1, 1 thread per rank, 25 GB memory (13 GB per rank)": one line per node, on world rank 0.
// Collective.
std::vector<std::string> node_lines(const parallel::Comm& world, int threads) {
  std::vector<std::string> lines;
  for (const auto& n : gather_nodes(world, threads)) {
    const std::string count = n.fewest_threads == n.most_threads
                                  ? std::to_string(n.most_threads)
                                  : std::to_string(n.fewest_threads) + "-" + std::to_string(n.most_threads);
    std::string line = "node " + n.host + ": rank" + (n.ranks.size() == 1 ? " " : "s ") + rank_ranges(n.ranks) + ", " +
                       count + " thread" + (n.most_threads == 1 ? "" : "s") + " per rank";
    if (n.memory > 0)
      line += ", " + train::bytes_text(static_cast<double>(n.memory)) + " memory (" +
              train::bytes_text(static_cast<double>(n.memory) / static_cast<double>(n.ranks.size())) + " per rank)";
    lines.push_back(line);
  }
  return lines;
}

}  // namespace gradfit
