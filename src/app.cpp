#include "app.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <limits>

#include "common/error.h"
#include "config/config.h"
#include "data/dataset.h"
#include "dist/device.h"
#include "gradfit/version.h"
#include "io/results.h"
#include "model/mlp.h"
#include "train/trainer.h"

namespace gradfit {
namespace {

namespace fs = std::filesystem;

// Runs `action` on every rank where `participate` is true and shares the first failure: every rank then throws
// the same collective Error, carrying the message of the lowest failing rank. `action` must not itself call
// collectives, or a rank that failed before one would leave the others waiting in it.
void all_or_none(const dist::Comm& comm, bool participate, const std::function<void()>& action) {
  std::string message;
  if (participate) {
    try {
      action();
    } catch (const std::exception& e) {
      message = e.what();
      if (message.empty()) message = "unknown error";
    }
  }
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  const int64_t failed = comm.allreduce_min(message.empty() ? kNone : comm.rank());
  if (failed == kNone) return;
  int64_t length = static_cast<int64_t>(message.size());
  comm.broadcast(&length, sizeof(length), static_cast<int>(failed));
  message.resize(static_cast<size_t>(length));
  comm.broadcast(message.data(), length, static_cast<int>(failed));
  throw Error(message, /*collective=*/true);
}

// Refuse before training, not after, to replace a finished run's results.
void check_output(const fs::path& results, bool overwrite) {
  if (fs::exists(results) && !overwrite)
    throw IoError("results file '" + results.string() +
                  "' already exists; choose another --out or pass --overwrite to replace it");
}

void write_output(const fs::path& results, const config::Config& config, const io::RunContext& context,
                  const train::TrainResult& result) {
  std::error_code error;
  fs::create_directories(results.parent_path(), error);
  if (error)
    throw IoError("cannot create output directory '" + results.parent_path().string() + "': " + error.message());
  io::write_results(results.string(), config, context, result);
}

std::string batch_text(int64_t batch_size, int64_t total_rows) {
  if (batch_size == 0 || batch_size >= total_rows) return "full batch";
  return "batch " + std::to_string(batch_size);
}

int run(const AppOptions& options, const dist::Comm& comm) {
  const config::Config config = config::load_config(options.config_path);
  const config::RunSpec& run = config.run;

  const auto node = comm.node_local();
  const int threads = options.threads > 0 ? options.threads : dist::default_thread_count(node.size);
  torch::set_num_threads(threads);
  torch::Device device = torch::kCPU;
  all_or_none(comm, true, [&] { device = dist::select_device(config.device, node.rank, config.path); });

  const fs::path out_dir = options.out_dir.empty() ? fs::path("results") / run.name : fs::path(options.out_dir);
  const fs::path results_path = out_dir / "results.h5";
  all_or_none(comm, comm.is_root(), [&] { check_output(results_path, options.overwrite); });

  const auto data = data::load_dataset(run.data, model::torch_dtype(run.model.dtype), comm, device);
  if (run.train.value_weight > 0 && !data.has_values())
    throw ConfigError(config.path + ": key 'train.value_weight' is " + std::to_string(run.train.value_weight) +
                      " but " + data.description + " has no dataset 'value'");

  const bool root = comm.is_root();
  if (root) {
    std::printf("gradfit_dist %s: %s, %d rank%s, %d thread%s each, device %s\n", kVersion, options.config_path.c_str(),
                comm.size(), comm.size() == 1 ? "" : "s", threads, threads == 1 ? "" : "s", device.str().c_str());
    std::printf("data:  %s (N=%lld, n=%lld)\n", data.description.c_str(), static_cast<long long>(data.total_rows),
                static_cast<long long>(data.dim));
    std::printf("model: %s %s %s; %s lr=%g, %lld epochs, %s\n", model::architecture(run.model, data.dim).c_str(),
                config::to_string(run.model.activation), config::to_string(run.model.dtype),
                config::to_string(run.train.optimizer), run.train.lr, static_cast<long long>(run.train.epochs),
                batch_text(run.train.batch_size, data.total_rows).c_str());
    std::fflush(stdout);
  }
  const auto log = [&](const train::EpochRecord& r) {
    if (options.after_epoch) options.after_epoch(r.epoch);
    if (!root) return;
    if (r.epoch == 1 || r.epoch % run.train.log_every == 0 || r.epoch == run.train.epochs ||
        !std::isfinite(r.train_loss)) {
      std::printf("epoch %6lld  loss %.6e  rel_grad_error %.4e\n", static_cast<long long>(r.epoch), r.train_loss,
                  r.rel_grad_error);
      std::fflush(stdout);
    }
  };
  const train::TrainResult result = train::train(run, data, comm, log);

  io::RunContext context;
  context.command_line = options.command_line;
  context.ranks = comm.size();
  context.threads_per_rank = threads;
  context.device = device.str();
  context.data_description = data.description;
  context.total_rows = data.total_rows;
  context.dim = data.dim;
  all_or_none(comm, comm.is_root(), [&] { write_output(results_path, config, context, result); });
  if (root) {
    if (result.status == "diverged")
      std::printf("diverged: the loss became non-finite at epoch %zu (try a smaller train.lr)\n",
                  result.history.size());
    std::printf("%s in %.2f s (allreduce %.2f s, %.1f %%); wrote %s\n", result.status.c_str(), result.wall_seconds,
                result.allreduce_seconds,
                result.wall_seconds > 0 ? 100.0 * result.allreduce_seconds / result.wall_seconds : 0.0,
                results_path.c_str());
  }
  return 0;  // a diverged run is a result (status in the file), not a failure of the tool
}

}  // namespace

int run_app(const AppOptions& options, const dist::Comm& comm) {
  try {
    return run(options, comm);
  } catch (const Error& e) {
    if (e.collective()) {
      if (comm.is_root()) std::fprintf(stderr, "gradfit_dist: error: %s\n", e.what());
      return 1;
    }
    std::fprintf(stderr, "gradfit_dist: error on rank %d: %s\n", comm.rank(), e.what());
  } catch (const c10::Error& e) {
    std::string text = e.what_without_backtrace();
    text = text.substr(0, text.find('\n'));
    std::fprintf(stderr, "gradfit_dist: error on rank %d: LibTorch: %s\n", comm.rank(), text.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gradfit_dist: error on rank %d: %s\n", comm.rank(), e.what());
  }
  // Only this rank failed: the others may be waiting in a collective, so end them all.
  std::fflush(stderr);
  if (comm.size() > 1) comm.abort(1);
  return 1;
}

}  // namespace gradfit
