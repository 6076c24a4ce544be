#include "records/records.h"

#include <array>

namespace gradfit::records {
namespace {

constexpr std::array<std::pair<RunStatus, const char*>, 4> kStatusNames{{
    {RunStatus::done, "done"},
    {RunStatus::diverged, "diverged"},
    {RunStatus::early_stopped, "early_stopped"},
    {RunStatus::interrupted, "interrupted"},
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

}  // namespace gradfit::records
