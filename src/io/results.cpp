#include "io/results.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>

#include "common/error.h"
#include "gradfit/version.h"
#include "io/h5.h"
#include "model/mlp.h"

namespace gradfit::io {
namespace {

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

void write_run(const Location& runs, const config::RunSpec& run, const RunContext& context,
               const train::TrainResult& result) {
  const Location group = runs.create_group(run.name);
  const auto& h = result.history;

  std::vector<int64_t> epoch;
  std::vector<double> loss, rel_error, seconds;
  for (const auto& r : h) {
    epoch.push_back(r.epoch);
    loss.push_back(r.train_loss);
    rel_error.push_back(r.rel_grad_error);
    seconds.push_back(r.seconds);
  }
  group.write("epoch", epoch);
  group.write("train_loss", loss);
  group.write("rel_grad_error", rel_error);
  group.write("epoch_seconds", seconds);

  const Location model = group.create_group("model");
  for (const auto& [name, tensor] : result.parameters) {
    const auto t = tensor.contiguous();
    const std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    if (t.scalar_type() == torch::kFloat64)
      model.write(name, shape, t.data_ptr<double>());
    else
      model.write(name, shape, t.to(torch::kFloat32).contiguous().data_ptr<float>());
  }

  // Parameters of the run.
  const auto& d = run.data;
  const auto& m = run.model;
  const auto& t = run.train;
  group.write_attribute("name", run.name);
  group.write_attribute("target", std::string(config::to_string(d.target)));
  group.write_attribute("data", context.data_description);
  group.write_attribute("total_rows", context.total_rows);
  group.write_attribute("dim", context.dim);
  group.write_attribute("architecture", model::architecture(m, context.dim));
  group.write_attribute("widths", m.widths);
  group.write_attribute("activation", std::string(config::to_string(m.activation)));
  group.write_attribute("dtype", std::string(config::to_string(m.dtype)));
  group.write_attribute("parameter_count", result.parameter_count);
  group.write_attribute("optimizer", std::string(config::to_string(t.optimizer)));
  group.write_attribute("lr", t.lr);
  group.write_attribute("momentum", t.momentum);
  group.write_attribute("epochs", t.epochs);
  group.write_attribute("batch_size", t.batch_size);
  group.write_attribute("value_weight", t.value_weight);
  group.write_attribute("seed", static_cast<int64_t>(t.seed));
  // Outcome.
  group.write_attribute("status", result.status);
  group.write_attribute("epochs_run", static_cast<int64_t>(h.size()));
  if (!h.empty()) {
    group.write_attribute("final_loss", h.back().train_loss);
    group.write_attribute("final_rel_grad_error", h.back().rel_grad_error);
    group.write_attribute("best_loss", std::min_element(h.begin(), h.end(), [](const auto& a, const auto& b) {
                                         return a.train_loss < b.train_loss;
                                       })->train_loss);
  }
  group.write_attribute("wall_seconds", result.wall_seconds);
  group.write_attribute("allreduce_seconds", result.allreduce_seconds);
  group.write_attribute("ranks", static_cast<int64_t>(context.ranks));
  group.write_attribute("threads_per_rank", static_cast<int64_t>(context.threads_per_rank));
  group.write_attribute("device", context.device);
}

}  // namespace

void write_results(const std::string& path, const config::Config& config, const RunContext& context,
                   const train::TrainResult& result) {
  const std::string temporary = path + ".tmp-" + std::to_string(::getpid());
  try {
    {
      const File file = File::create(temporary);
      file.write_attribute("tool_version", std::string(kVersion));
      file.write_attribute("git_commit", std::string(kGitCommit));
      file.write_attribute("command_line", context.command_line);
      file.write_attribute("config_path", config.path);
      file.write_attribute("config_yaml", config.yaml_text);
      file.write_attribute("created", utc_now());
      write_run(file.create_group("runs"), config.run, context, result);
    }  // closed, and so flushed, before the rename
    std::filesystem::rename(temporary, path);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(temporary, ignored);
    throw;
  }
}

}  // namespace gradfit::io
