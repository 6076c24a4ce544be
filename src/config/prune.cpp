// sweep.prune: reading and checking it, and its rungs.
#include <algorithm>
#include <string>

#include "config/config.h"
#include "config/section.h"

namespace gradfit::config {
namespace {

constexpr NameTable<PruneMethod, 3> kMethods{
    {{"none", PruneMethod::none}, {"asha", PruneMethod::asha}, {"median", PruneMethod::median}}};
constexpr NameTable<PruneMetric, 3> kMetrics{{{"val_loss", PruneMetric::val_loss},
                                              {"train_loss", PruneMetric::train_loss},
                                              {"rel_grad_error", PruneMetric::rel_grad_error}}};

template <class Enum, size_t K>
const char* name_in(const NameTable<Enum, K>& table, Enum value) {
  for (const auto& [name, v] : table)
    if (v == value) return name;
  return "?";
}

// The runs' common train.epochs; a ConfigError when they differ (rungs are the same epochs for every run).
int64_t common_epochs(const Section& prune, const std::vector<RunSpec>& runs) {
  for (const auto& run : runs)
    if (run.train.epochs != runs.front().train.epochs)
      prune.fail(prune.node(), "the runs differ in train.epochs (" + std::to_string(runs.front().train.epochs) +
                                   " and " + std::to_string(run.train.epochs) +
                                   "): pruning compares runs at the same epochs");
  return runs.front().train.epochs;
}

bool all_validate(const std::vector<RunSpec>& runs) {
  return std::all_of(runs.begin(), runs.end(), [](const RunSpec& r) { return r.train.val_fraction > 0; });
}

}  // namespace

std::vector<int64_t> PruneSpec::rungs() const {
  std::vector<int64_t> epochs_at;
  if (!active() || min_epochs < 1) return epochs_at;
  for (int64_t e = min_epochs; e < epochs;) {
    epochs_at.push_back(e);
    if (method == PruneMethod::median) {
      e += min_epochs;
    } else if (e > epochs / reduction_factor) {
      break;  // the next rung is at or past the last epoch (and e·η cannot overflow)
    } else {
      e *= reduction_factor;
    }
  }
  return epochs_at;
}

const char* to_string(PruneMethod m) {
  return name_in(kMethods, m);
}
const char* to_string(PruneMetric m) {
  return name_in(kMetrics, m);
}

PruneSpec parse_prune(const YAML::Node& sweep, const std::string& file, const std::vector<RunSpec>& runs) {
  PruneSpec spec;
  if (!sweep.IsMap() || !sweep["prune"]) return spec;
  const YAML::Node node = sweep["prune"];
  if (!node.IsMap()) fail_at(file, node, "sweep.prune", "must be a mapping, e.g. {method: asha, min_epochs: 20}");
  const Section prune(file, node, "sweep.prune", section_keys("sweep.prune"));
  if (!prune.has("method")) prune.fail(node, "missing required key (asha, median or none)", "method");
  spec.method = prune.get_enum("method", kMethods, spec.method);
  if (!spec.active() || runs.empty()) return spec;
  spec.epochs = common_epochs(prune, runs);
  const bool validates = all_validate(runs);
  spec.metric = prune.get_enum("metric", kMetrics, validates ? PruneMetric::val_loss : PruneMetric::rel_grad_error);
  if (spec.metric == PruneMetric::val_loss && !validates)
    prune.fail(prune.child("metric"), "val_loss needs train.val_fraction > 0 in every run", "metric");
  if (spec.method == PruneMethod::asha) {
    spec.reduction_factor = prune.get<int64_t>("reduction_factor", spec.reduction_factor);
    prune.check(spec.reduction_factor >= 2, "reduction_factor", "must be >= 2", spec.reduction_factor);
  } else if (prune.has("reduction_factor")) {
    prune.fail(prune.child("reduction_factor"), "applies to method asha only", "reduction_factor");
  }
  const int64_t cube = spec.reduction_factor * spec.reduction_factor * spec.reduction_factor;
  const int64_t fallback =
      std::max<int64_t>(1, spec.method == PruneMethod::asha ? spec.epochs / cube : spec.epochs / 10);
  spec.min_epochs = prune.get<int64_t>("min_epochs", fallback);
  prune.check(spec.min_epochs >= 1 && spec.min_epochs < spec.epochs, "min_epochs",
              "must be >= 1 and below train.epochs (" + std::to_string(spec.epochs) + ")", spec.min_epochs);
  spec.async = prune.get<bool>("async", false);
  return spec;
}

}  // namespace gradfit::config
