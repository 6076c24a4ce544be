#include "sweep/job_files.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <utility>

#include "io/checkpoint.h"
#include "parallel/agree.h"

namespace gradfit::sweep {

BlameScope::BlameScope(size_t& blamed, size_t member) : blamed_(blamed), exceptions_(std::uncaught_exceptions()) {
  blamed_ = member;
}

BlameScope::~BlameScope() {
  if (std::uncaught_exceptions() == exceptions_) blamed_ = 0;
}

JobFiles::JobFiles(const OutputFolder& folder, const config::Config& config, const JobSpec& job,
                   const std::vector<config::RunSpec>& runs, const parallel::Comm& group,
                   std::function<void()> before_commit)
    : folder_(folder),
      config_(config),
      job_(job),
      runs_(runs),
      group_(group),
      before_commit_(std::move(before_commit)),
      job_checkpoint_(folder.checkpoint_file(runs.front())) {}

std::vector<records::Checkpoint> JobFiles::read_checkpoints(size_t& blamed) {
  const int64_t source = job_.source;
  if (source < 0) return {};
  std::vector<records::Checkpoint> checkpoints;
  if (job_.own_checkpoints) {
    for (size_t i = 0; i < runs_.size(); ++i) {
      const BlameScope blame(blamed, i);
      const std::string path = folder_.checkpoint_file(runs_[i]);
      parallel::all_or_none(group_, true, [&] { checkpoints.push_back(io::read_checkpoints(path, {runs_[i].id})[0]); });
    }
    return checkpoints;
  }
  const std::string path = folder_.checkpoint_file(config_.runs[source]);
  if (path != job_checkpoint_) stale_ = path;
  std::vector<std::string> ids;
  for (const auto& run : runs_) ids.push_back(run.id);
  parallel::all_or_none(group_, true, [&] { checkpoints = io::read_checkpoints(path, ids); });
  return checkpoints;
}

void JobFiles::save_checkpoint(const std::vector<records::Checkpoint>& saved) {
  parallel::all_or_none(group_, group_.is_root(), [&] {
    std::vector<std::string> ids;
    for (const auto& c : saved) ids.push_back(runs_[c.member].id);
    if (!job_.own_checkpoints) return io::write_checkpoints(job_checkpoint_, ids, saved, before_commit_);
    for (size_t i = 0; i < saved.size(); ++i)
      io::write_checkpoint(folder_.checkpoint_file(runs_[saved[i].member]), ids[i], saved[i], before_commit_);
  });
  if (group_.is_root() && !stale_.empty()) std::remove(stale_.c_str());
  stale_.clear();
}

void JobFiles::remove_checkpoints(const std::vector<records::TrainResult>& results) const {
  if (!group_.is_root()) return;
  const auto kept = [](const records::TrainResult& r) {
    return r.status == records::RunStatus::interrupted || r.status == records::RunStatus::paused;
  };
  if (job_.own_checkpoints) {
    for (size_t i = 0; i < runs_.size(); ++i)
      if (!kept(results[i])) std::remove(folder_.checkpoint_file(runs_[i]).c_str());
    return;
  }
  if (std::any_of(results.begin(), results.end(), kept)) return;
  std::remove(job_checkpoint_.c_str());
  if (!stale_.empty()) std::remove(stale_.c_str());
}

void JobFiles::write_run_file(size_t member, const io::RunProvenance& context,
                              const records::TrainResult& result) const {
  const auto& run = runs_[member];
  parallel::all_or_none(group_, group_.is_root(),
                        [&] { io::write_results(folder_.run_file(run), config_, run, context, result); });
}

}  // namespace gradfit::sweep
