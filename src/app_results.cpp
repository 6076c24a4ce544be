#include "app_results.h"

#include <utility>

#include "io/results.h"

namespace gradfit {

ResultsMerger::ResultsMerger(const config::Config& config, const sweep::OutputFolder& folder, std::string command_line)
    : config_(config), folder_(folder), command_line_(std::move(command_line)) {}

void ResultsMerger::run_ended() {
  const auto now = std::chrono::steady_clock::now();
  if (now - last_merge_ < std::chrono::seconds(30)) return;
  merge();
  last_merge_ = now;
}

void ResultsMerger::merge() const {
  io::merge_results(folder_.results_file(), config_, command_line_, folder_.existing_run_files(config_));
}

}  // namespace gradfit
