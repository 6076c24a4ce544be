#include "sweep/output_folder.h"

#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "io/checkpoint.h"
#include "io/h5.h"

namespace gradfit::sweep {
namespace {

namespace fs = std::filesystem;

void make_directory(const fs::path& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw IoError("cannot create output directory '" + dir.string() + "': " + error.message());
}

// Reading one output folder for one sweep: which runs its files name, and the error for a file of another sweep.
class Inspection {
 public:
  Inspection(const config::Config& config, const fs::path& dir) : config_(config), dir_(dir) {
    for (size_t i = 0; i < config.runs.size(); ++i) index_of_[config.runs[i].id] = static_cast<int64_t>(i);
    prior_.finished.assign(config.runs.size(), 0);
    prior_.checkpointed.assign(config.runs.size(), 0);
    prior_.checkpoint_epoch.assign(config.runs.size(), 0);
    prior_.checkpoint_batch.assign(config.runs.size(), 0);
  }

  // Every run in results.h5 must be one of this sweep's.
  void check_results(const fs::path& path) const {
    const auto file = io::File::open_read_only(path.string());
    for (const auto& name : file.children("runs"))
      if (index(file.open_group("runs/" + name).read_string_attribute("id")) < 0)
        throw foreign("run '" + name + "' in " + path.string());
  }

  // A file that fails its checksums is set aside as <name>.damaged (nothing is deleted) with a warning saying what
  // happens instead: its runs train again, or start over. False for such a file.
  static bool intact(const fs::path& path, const char* consequence) {
    try {
      io::verify_file(path.string());
      return true;
    } catch (const IoError& e) {
      fs::rename(path, fs::path(path.string() + ".damaged"));
      std::printf("gradfit_dist: warning: %s; kept as %s.damaged, %s\n", e.what(), path.c_str(), consequence);
      std::fflush(stdout);
      return false;
    }
  }

  // A run file: its runs, finished unless interrupted.
  void read_run_file(const fs::path& path) {
    if (!intact(path, "its runs train again")) return;
    const auto file = io::File::open_read_only(path.string());
    for (const auto& name : file.children("runs")) {
      const auto group = file.open_group("runs/" + name);
      const int64_t i = index(group.read_string_attribute("id"));
      if (i < 0) throw foreign("run '" + name + "' in " + path.string());
      const std::string status = group.read_string_attribute("status");
      const auto parsed = records::parse_run_status(status);
      if (!parsed) throw IoError(path.string() + ": run '" + name + "' has an unknown status '" + status + "'");
      RunSummary s;
      s.index = i;
      s.status = *parsed;
      s.epochs_run = group.read_int_attribute("epochs_run");
      s.seconds = group.read_double_attribute("wall_seconds");
      const auto real = [&group](const char* name) {  // absent when the run ended before its first epoch
        return group.has_attribute(name) ? group.read_double_attribute(name) : std::nan("");
      };
      s.final_loss = real("final_loss");
      s.final_rel_grad_error = real("final_rel_grad_error");
      s.best_val_loss = real("best_val_loss");
      s.test_rel_grad_error = real("test_rel_grad_error");
      if (*parsed == records::RunStatus::interrupted) {
        prior_.interrupted.push_back(s);
        continue;
      }
      prior_.finished[i] = 1;
      prior_.summaries.push_back(s);
    }
  }

  // A checkpoint file (after every run file): its unfinished runs resume from it; one whose runs all finished
  // before it could be removed is removed now.
  void read_checkpoint_file(const fs::path& path) {
    const int64_t named = index(path.stem().string());
    if (named < 0) throw foreign("checkpoint " + path.string());
    if (!intact(path, "its runs start over")) return;
    std::vector<int64_t> unfinished;
    const auto ids = io::checkpoint_runs(path.string());
    if (ids.size() == 1 && index(ids[0]) >= 0) {
      const auto file = io::File::open_read_only(path.string());
      prior_.checkpoint_epoch[index(ids[0])] = file.read_int_attribute("epoch");
      prior_.checkpoint_batch[index(ids[0])] = file.read_int_attribute("next_batch");
    }
    for (const auto& id : ids) {
      const int64_t i = index(id);
      if (i < 0) throw foreign("run " + id + " in checkpoint " + path.string());
      if (!prior_.finished[i]) unfinished.push_back(i);
    }
    if (unfinished.empty()) {
      fs::remove(path);
      return;
    }
    for (const int64_t i : unfinished) prior_.checkpointed[i] = 1;
    prior_.resumable += static_cast<int64_t>(unfinished.size());
    prior_.checkpoints[named] = unfinished;
  }

  PriorWork take() { return std::move(prior_); }

 private:
  int64_t index(const std::string& id) const {
    const auto it = index_of_.find(id);
    return it == index_of_.end() ? -1 : it->second;
  }

  IoError foreign(const std::string& what) const {
    return IoError(what + " is not a run of " + config_.path +
                   " as it is now (the sweep file or --set changed existing runs); rerun with --fresh to discard the "
                   "earlier results in " +
                   dir_.string() + ", or choose another --out");
  }

  const config::Config& config_;
  const fs::path& dir_;
  std::map<std::string, int64_t> index_of_;
  PriorWork prior_;
};

// The files of `dir` whose extension is .h5 (not the temporaries a kill left: "<name>.h5.tmp-<pid>").
std::vector<fs::path> h5_files(const fs::path& dir) {
  std::vector<fs::path> files;
  if (!fs::exists(dir)) return files;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().extension() == ".h5") files.push_back(entry.path());
  return files;
}

// Temporaries of writes a kill interrupted: never complete, never needed.
void remove_temporaries(const fs::path& dir) {
  if (!fs::exists(dir)) return;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) fs::remove(entry.path());
}

}  // namespace

OutputFolder::OutputFolder(fs::path dir) : dir_(std::move(dir)) {}

std::string OutputFolder::results_file() const {
  return (dir_ / "results.h5").string();
}

std::string OutputFolder::pruning_file() const {
  return (dir_ / "pruning.tsv").string();
}

std::string OutputFolder::run_file(const config::RunSpec& run) const {
  return (runs_dir() / (run.id + ".h5")).string();
}

std::string OutputFolder::checkpoint_file(const config::RunSpec& run) const {
  return (checkpoints_dir() / (run.id + ".h5")).string();
}

std::vector<std::string> OutputFolder::existing_run_files(const config::Config& config) const {
  std::vector<std::string> files;
  for (const auto& run : config.runs)
    if (fs::is_regular_file(run_file(run))) files.push_back(run_file(run));
  return files;
}

PriorWork OutputFolder::inspect(const config::Config& config, bool fresh) const {
  if (fresh) {
    std::error_code ignored;
    fs::remove(results_file(), ignored);
    fs::remove(pruning_file(), ignored);
    fs::remove_all(runs_dir(), ignored);
    fs::remove_all(checkpoints_dir(), ignored);
  }
  Inspection inspection(config, dir_);
  if (fs::exists(results_file())) inspection.check_results(results_file());
  for (const auto& path : h5_files(runs_dir())) inspection.read_run_file(path);
  for (const auto& path : h5_files(checkpoints_dir())) inspection.read_checkpoint_file(path);
  for (const auto& dir : {dir_, runs_dir(), checkpoints_dir()}) remove_temporaries(dir);
  make_directory(runs_dir());
  make_directory(checkpoints_dir());
  return inspection.take();
}

}  // namespace gradfit::sweep
