#include "app_console.h"

#include <algorithm>
#include <cstdio>

#include "gradfit/version.h"
#include "model/mlp.h"
#include "sweep/jobs.h"

namespace gradfit {
namespace {

std::string batch_text(int64_t batch_size) {
  return batch_size == 0 ? "full" : std::to_string(batch_size);
}

// Where the learning rate goes: "constant", "cosine->1e-05" (its last epoch's rate), "plateau x0.1".
std::string schedule_text(const config::OptimizerSpec& o) {
  char text[64];
  switch (o.schedule) {
    case config::Schedule::exponential:
    case config::Schedule::cosine:
      std::snprintf(text, sizeof text, "%s->%g", config::to_string(o.schedule), o.lr_final);
      return text;
    case config::Schedule::plateau: std::snprintf(text, sizeof text, "plateau x%g", o.plateau_factor); return text;
    default: return config::to_string(o.schedule);
  }
}

}  // namespace

const char* plural(int64_t count) {
  return count == 1 ? "" : "s";
}

void print_dry_run(const config::Config& config, const data::FileLayouts& layouts) {
  std::printf("%zu run%s from %s (nothing is trained with --dry-run)\n", config.runs.size(),
              config.runs.size() == 1 ? "" : "s", config.path.c_str());
  std::printf("%-5s %-12s %-12s %-9s %-8s %-10s %-16s %-7s %-6s %s\n", "#", "id", "architecture", "act", "opt", "lr",
              "schedule", "epochs", "batch", "name");
  for (size_t i = 0; i < config.runs.size(); ++i) {
    const auto& r = config.runs[i];
    const int64_t dim = r.data.target == config::Target::file ? layouts.at(r.data.path).dim : r.data.dim;
    std::printf("%-5zu %-12s %-12s %-9s %-8s %-10g %-16s %-7lld %-6s %s\n", i + 1, r.id.c_str(),
                model::architecture(r.model, dim).c_str(), config::to_string(r.model.activation),
                config::to_string(r.optimizer.name), r.optimizer.lr, schedule_text(r.optimizer).c_str(),
                static_cast<long long>(r.train.epochs), batch_text(r.train.batch_size).c_str(), r.name.c_str());
  }
}

void print_memory_estimate(const std::vector<sweep::JobMemory>& jobs, int group_ranks, torch::Device device) {
  const auto largest = std::max_element(jobs.begin(), jobs.end(),
                                        [](const auto& a, const auto& b) { return a.need.total() < b.need.total(); });
  if (largest == jobs.end()) return;
  std::printf("memory estimate, %d rank%s per run, %s: %s needs %s\n", group_ranks, plural(group_ranks),
              device.is_cuda() ? "cuda (the host's part)" : "cpu", largest->name().c_str(),
              largest->need.text().c_str());
  std::fflush(stdout);
}

void print_start(const std::string& config_path, int ranks, const Sweep& s) {
  const auto runs = static_cast<int64_t>(s.config.runs.size());
  std::printf("gradfit_dist %s: %s, %lld run%s, %d rank%s in %d group%s, %d thread%s per rank, device %s\n", kVersion,
              config_path.c_str(), static_cast<long long>(runs), plural(runs), ranks, plural(ranks), s.groups,
              plural(s.groups), s.threads, plural(s.threads), s.device.str().c_str());
  for (const auto& line : s.nodes) std::printf("%s\n", line.c_str());
  const auto finished = static_cast<int64_t>(s.prior.summaries.size());
  if (finished > 0 || s.prior.resumable > 0)
    std::printf("continuing in %s: %lld run%s already finished, %lld to resume from checkpoints\n", s.out_dir.c_str(),
                static_cast<long long>(finished), plural(finished), static_cast<long long>(s.prior.resumable));
  std::fflush(stdout);
}

void print_pruning(const config::PruneSpec& prune) {
  std::string rungs;
  for (const int64_t e : prune.rungs()) rungs += " " + std::to_string(e);
  std::printf("sweep.prune: %s on %s, rungs at epochs%s of %lld%s\n", config::to_string(prune.method),
              config::to_string(prune.metric), rungs.c_str(), static_cast<long long>(prune.epochs),
              prune.async ? " (async: decided as reports arrive)" : " (each rung decided once all its runs report)");
  std::fflush(stdout);
}

void print_ensembles(const Sweep& s) {
  const auto counts = sweep::count_ensembles(s.plan);
  if (counts.ensembles == 0) return;
  std::printf("%lld runs train in %lld ensemble%s of up to %lld (ensemble_size: %d)\n",
              static_cast<long long>(counts.runs), static_cast<long long>(counts.ensembles), plural(counts.ensembles),
              static_cast<long long>(counts.largest), s.config.ensemble_size);
  std::fflush(stdout);
}

void print_stopped(int64_t unfinished, int exit_code) {
  std::printf("stopped by a signal: %lld run%s unfinished; run the same command again to continue (exit code %d)\n",
              static_cast<long long>(unfinished), plural(unfinished), exit_code);
}

}  // namespace gradfit
