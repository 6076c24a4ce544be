#include "records/records.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <tuple>
#include <utility>

namespace gradfit::records {
namespace {

constexpr std::array<std::pair<RunStatus, const char*>, 6> kStatusNames{{
    {RunStatus::done, "done"},
    {RunStatus::diverged, "diverged"},
    {RunStatus::early_stopped, "early_stopped"},
    {RunStatus::interrupted, "interrupted"},
    {RunStatus::paused, "paused"},
    {RunStatus::pruned, "pruned"},
}};

}  // namespace

const char* to_string(RunStatus status) {
  for (const auto& [value, name] : kStatusNames)
    if (value == status) return name;
  return "unknown";
}

std::optional<RunStatus> parse_run_status(const std::string& text) {
  for (const auto& [value, name] : kStatusNames)
    if (text == name) return value;
  return std::nullopt;
}

std::vector<size_t> best_first(const std::vector<Standing>& runs, std::string* measure) {
  const bool validated =
      std::any_of(runs.begin(), runs.end(), [](const Standing& s) { return std::isfinite(s.best_val_loss); });
  if (measure) *measure = validated ? "best_val_loss" : "final_rel_grad_error";
  const auto key = [validated](const Standing& s) {
    const bool eligible = s.status == RunStatus::done || s.status == RunStatus::early_stopped;
    const double value = validated ? s.best_val_loss : s.final_rel_grad_error;
    return std::make_tuple(eligible ? 0 : 1, std::isfinite(value) ? value : INFINITY, std::cref(s.name));
  };
  std::vector<size_t> order(runs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return key(runs[a]) < key(runs[b]); });
  return order;
}

}  // namespace gradfit::records
