#include "sweep/pruning.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <tuple>

#include "common/error.h"

namespace gradfit::sweep {
namespace {

constexpr double kWorst = std::numeric_limits<double>::infinity();

double ranked(double metric) {
  return std::isfinite(metric) ? metric : kWorst;
}

constexpr std::pair<Decision, const char*> kDecisionNames[] = {
    {Decision::reported, "reported"}, {Decision::promoted, "promoted"}, {Decision::pruned, "pruned"}};

const char* to_text(Decision decision) {
  for (const auto& [d, name] : kDecisionNames)
    if (d == decision) return name;
  return "?";
}

std::optional<Decision> parse_decision(const std::string& text) {
  for (const auto& [d, name] : kDecisionNames)
    if (text == name) return d;
  return std::nullopt;
}

// The median of `values` (the mean of the middle two for an even count); +inf for none.
double median(std::vector<double> values) {
  if (values.empty()) return kWorst;
  const size_t mid = values.size() / 2;
  std::nth_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid), values.end());
  const double upper = values[mid];
  if (values.size() % 2 == 1) return upper;
  const double lower = *std::max_element(values.begin(), values.begin() + static_cast<std::ptrdiff_t>(mid));
  return std::isinf(upper) ? (std::isinf(lower) ? kWorst : upper) : (lower + upper) / 2;
}

std::string number(double value) {
  char text[40];
  std::snprintf(text, sizeof text, "%.4g", value);
  return text;
}

}  // namespace

double prune_metric(config::PruneMetric metric, const std::vector<records::EpochRecord>& history) {
  if (history.empty()) return kWorst;
  if (metric == config::PruneMetric::val_loss) {
    double best = kWorst;
    for (const auto& r : history)
      if (std::isfinite(r.val_loss)) best = std::min(best, r.val_loss);
    return best;
  }
  const auto& last = history.back();
  return ranked(metric == config::PruneMetric::train_loss ? last.train_loss : last.rel_grad_error);
}

int64_t reached_rung(const config::PruneSpec& spec, int64_t epochs_run) {
  if (!spec.active()) return -1;
  const std::vector<int64_t> rungs = spec.rungs();
  if (epochs_run >= spec.epochs) return static_cast<int64_t>(rungs.size());
  return static_cast<int64_t>(std::upper_bound(rungs.begin(), rungs.end(), epochs_run) - rungs.begin()) - 1;
}

Pruner::Pruner(const config::Config& config, const PriorWork& prior, Packing pack, std::string state_file,
               std::function<void(const std::string&)> say)
    : config_(config),
      spec_(config.prune),
      rungs_(spec_.rungs()),
      pack_(std::move(pack)),
      state_file_(std::move(state_file)),
      say_(std::move(say)),
      runs_(config.runs.size()),
      rung_state_(rungs_.size() + 1) {
  for (const auto& [named, held] : prior.checkpoints)
    if (held.size() > 1)
      throw IoError("checkpoints/" + config.runs[named].id +
                    ".h5 holds an ensemble saved without sweep.prune; finish that sweep without sweep.prune first, "
                    "or rerun with --fresh");
  read_state();
  restore(prior);
}

// ---- The decisions file ---------------------------------------------------------------------------------------

std::string Pruner::settings_text() const {
  std::string rungs;
  for (const int64_t e : rungs_) rungs += (rungs.empty() ? "" : " ") + std::to_string(e);
  return std::string("method ") + config::to_string(spec_.method) + ", metric " + config::to_string(spec_.metric) +
         ", rungs at epochs " + rungs + " of " + std::to_string(spec_.epochs) + (spec_.async ? ", async" : "");
}

void Pruner::read_state() {
  std::ifstream in(state_file_);
  if (!in) return;
  std::map<std::string, int64_t> index_of;
  for (size_t i = 0; i < config_.runs.size(); ++i) index_of[config_.runs[i].id] = static_cast<int64_t>(i);
  const std::string redo = "; rerun with --fresh to start the sweep over, or use the earlier settings";
  std::string line;
  std::getline(in, line);
  const std::string expected = "# gradfit_dist sweep.prune: " + settings_text();
  if (line != expected)
    throw IoError(state_file_ + ": its decisions were made under other settings ('" + line.substr(line.find(':') + 2) +
                  "', now '" + settings_text() + "')" + redo);
  for (int number = 2; std::getline(in, line); ++number) {
    std::istringstream fields(line);
    std::string id, metric, decision;
    Row row;
    if (!(fields >> id >> row.rung >> metric >> decision) || !index_of.count(id) || row.rung < 0 ||
        row.rung >= static_cast<int>(rungs_.size()) || !parse_decision(decision))
      throw IoError(state_file_ + ":" + std::to_string(number) + ": not a decision about a run of " + config_.path +
                    " as it is now: '" + line + "'" + redo);
    row.run = index_of[id];
    row.metric = std::strtod(metric.c_str(), nullptr);
    row.decision = *parse_decision(decision);
    rows_.push_back(row);
  }
}

// Written whole to a temporary file, flushed to disk and renamed over the previous one.
void Pruner::write_state() const {
  const std::string temporary = state_file_ + ".tmp-" + std::to_string(::getpid());
  std::FILE* out = std::fopen(temporary.c_str(), "w");
  if (!out) throw IoError("cannot write '" + temporary + "'");
  std::fprintf(out, "# gradfit_dist sweep.prune: %s\n", settings_text().c_str());
  for (const Row& row : rows_)
    std::fprintf(out, "%s\t%d\t%.17g\t%s\n", config_.runs[row.run].id.c_str(), row.rung, row.metric,
                 to_text(row.decision));
  const bool written = std::fflush(out) == 0 && ::fsync(fileno(out)) == 0;
  if (std::fclose(out) != 0 || !written || std::rename(temporary.c_str(), state_file_.c_str()) != 0) {
    std::remove(temporary.c_str());
    throw IoError("cannot write '" + state_file_ + "' (is the disk full?)");
  }
}

// ---- Where the runs stand at the start ------------------------------------------------------------------------

void Pruner::restore(const PriorWork& prior) {
  rung_state_[0].population = static_cast<int64_t>(runs_.size());
  for (const Row& row : rows_) {  // in the order they were made: a run's rungs increase
    Rung& rung = rung_state_[row.rung];
    rung.reports.emplace_back(ranked(row.metric), row.run);
    runs_[row.run].rung = row.rung;
    if (row.decision != Decision::reported) rung.decided = !spec_.async;
    if (row.decision != Decision::promoted) continue;
    ++rung_state_[row.rung + 1].population;
    runs_[row.run].rung = row.rung + 1;
  }
  for (size_t i = 0; i < runs_.size(); ++i) restore_run(static_cast<int64_t>(i), prior);
  for (int k = 0; k < static_cast<int>(rungs_.size()); ++k) try_decide(k);  // complete, but undecided at the kill
  queue_jobs();
}

void Pruner::restore_run(int64_t i, const PriorWork& prior) {
  RunState& run = runs_[i];
  const Row* last = nullptr;
  for (const Row& row : rows_)
    if (row.run == i) last = &row;
  const bool reported_here = last && last->rung == run.rung && last->decision != Decision::promoted;
  if (prior.finished[i]) {
    run.stage = Stage::ended;
    if (!reported_here && run.rung < static_cast<int>(rungs_.size())) ++rung_state_[run.rung].ended;
    return;
  }
  run.resume_epoch = prior.checkpoint_epoch[i];
  run.resume_batch = prior.checkpoint_batch[i];
  if (reported_here && run.resume_epoch == rungs_[run.rung] + 1 && run.resume_batch == 0) {
    run.stage = Stage::waiting;  // its checkpoint is the one it paused with
    if (last->decision == Decision::pruned) to_prune_.push_back(i);
    return;
  }
  if (reported_here) {  // its checkpoint is gone (set aside as damaged): it trains to the rung again
    auto& reports = rung_state_[run.rung].reports;
    reports.erase(std::remove_if(reports.begin(), reports.end(), [i](const auto& r) { return r.second == i; }),
                  reports.end());
    rows_.erase(
        std::remove_if(rows_.begin(), rows_.end(), [&](const Row& r) { return r.run == i && r.rung == run.rung; }),
        rows_.end());
  }
  to_queue_.push_back(i);
}

// ---- Reports and decisions ------------------------------------------------------------------------------------

void Pruner::finished(const RunSummary& summary) {
  RunState& run = runs_[summary.index];
  --training_;
  switch (summary.status) {
    case records::RunStatus::paused:
      run.resume_epoch = summary.epochs_run + 1;
      run.resume_batch = 0;
      report(summary.index, summary.metric);
      break;
    case records::RunStatus::interrupted: run.stage = Stage::idle; return;  // the sweep is stopping
    case records::RunStatus::pruned: run.stage = Stage::ended; return;
    default:  // ended before its rung (diverged, early stopped), or trained every epoch
      run.stage = Stage::ended;
      if (run.rung < static_cast<int>(rungs_.size())) {
        ++rung_state_[run.rung].ended;
        try_decide(run.rung);
      }
  }
  write_state();
  queue_jobs();
}

void Pruner::report(int64_t run, double metric) {
  const int k = runs_[run].rung;
  runs_[run].stage = Stage::waiting;
  rung_state_[k].reports.emplace_back(ranked(metric), run);
  rows_.push_back(Row{run, k, metric, Decision::reported});
  if (spec_.async)
    decide_async(k, run);
  else
    try_decide(k);
}

void Pruner::try_decide(int k) {
  if (spec_.async || k >= static_cast<int>(rungs_.size())) return;
  const Rung& rung = rung_state_[k];
  const auto heard = static_cast<int64_t>(rung.reports.size()) + rung.ended;
  if (!rung.decided && rung.population > 0 && heard >= rung.population) decide(k);
}

// Every run of the rung has reported: asha keeps the best max(1, ⌊n/η⌋); median keeps every run not worse than
// the median of the others. Ties go to the run first in the sweep.
void Pruner::decide(int k) {
  Rung& rung = rung_state_[k];
  rung.decided = true;
  auto sorted = rung.reports;
  std::sort(sorted.begin(), sorted.end());
  const auto n = static_cast<int64_t>(sorted.size());
  std::vector<double> metrics;
  for (const auto& r : sorted) metrics.push_back(r.first);
  int64_t kept = 0;
  for (int64_t j = 0; j < n; ++j) {
    bool keep = j < std::max<int64_t>(1, n / spec_.reduction_factor);
    if (spec_.method == config::PruneMethod::median) {
      std::vector<double> others = metrics;
      others.erase(others.begin() + j);
      keep = others.empty() || sorted[j].first <= median(others);
    }
    keep ? promote(sorted[j].second, k) : prune(sorted[j].second, k);
    kept += keep ? 1 : 0;
  }
  if (n == 0) return;
  say_("rung " + std::to_string(k + 1) + "/" + std::to_string(rungs_.size()) + " at epoch " +
       std::to_string(rungs_[k]) + ": " + std::to_string(n) + " run" + (n == 1 ? "" : "s") + ", " +
       std::to_string(kept) + " continue, " + std::to_string(n - kept) + " pruned; best " +
       config::to_string(spec_.metric) + " " + number(sorted[0].first) + " (" + config_.runs[sorted[0].second].name +
       ")");
}

// async: asha promotes every waiting run among the best ⌊n/η⌋ of the n reports so far; median decides the new
// report against the median of the earlier ones.
void Pruner::decide_async(int k, int64_t run) {
  if (k >= static_cast<int>(rungs_.size())) return;
  Rung& rung = rung_state_[k];
  if (spec_.method == config::PruneMethod::median) {
    std::vector<double> others;
    for (const auto& [metric, r] : rung.reports)
      if (r != run) others.push_back(metric);
    ranked(rung.reports.back().first) <= median(others) || others.empty() ? promote(run, k) : prune(run, k);
    return;
  }
  auto sorted = rung.reports;
  std::sort(sorted.begin(), sorted.end());
  const auto allowed = static_cast<int64_t>(sorted.size()) / spec_.reduction_factor;
  for (int64_t j = 0; j < allowed; ++j) {
    const int64_t r = sorted[j].second;
    if (runs_[r].stage == Stage::waiting && runs_[r].rung == k) promote(r, k);
  }
}

void Pruner::promote(int64_t run, int k) {
  row_of(run, k).decision = Decision::promoted;
  ++rung_state_[k + 1].population;
  runs_[run].rung = k + 1;
  runs_[run].stage = Stage::idle;
  to_queue_.push_back(run);
}

void Pruner::prune(int64_t run, int k) {
  row_of(run, k).decision = Decision::pruned;
  runs_[run].stage = Stage::idle;
  to_prune_.push_back(run);
}

Pruner::Row& Pruner::row_of(int64_t run, int k) {
  for (auto it = rows_.rbegin(); it != rows_.rend(); ++it)
    if (it->run == run && it->rung == k) return *it;
  throw Error("sweep.prune: run " + config_.runs[run].name + " has no report at rung " + std::to_string(k));
}

// Nothing is training and nothing is queued: the runs still waiting are decided now (async: pruned, they were not
// promoted; deterministic: only if a rung was left undecided, which its accounting should never allow).
void Pruner::settle_waiting() {
  bool changed = false;
  for (int k = 0; k < static_cast<int>(rungs_.size()); ++k) {
    std::vector<int64_t> waiting;
    for (size_t i = 0; i < runs_.size(); ++i)
      if (runs_[i].stage == Stage::waiting && runs_[i].rung == k) waiting.push_back(static_cast<int64_t>(i));
    if (waiting.empty()) continue;
    changed = true;
    if (!spec_.async && !rung_state_[k].decided) {
      decide(k);
      continue;
    }
    for (const int64_t run : waiting) prune(run, k);
  }
  if (!changed) return;
  write_state();
  queue_jobs();
}

// ---- Jobs -----------------------------------------------------------------------------------------------------

JobSource::Next Pruner::next(JobSpec* job) {
  if (queue_.empty() && training_ == 0) settle_waiting();
  if (queue_.empty()) return training_ > 0 ? Next::wait : Next::none;
  *job = std::move(queue_.front());
  queue_.pop_front();
  for (const int64_t run : job->runs) runs_[run].stage = Stage::training;
  training_ += static_cast<int64_t>(job->runs.size());
  return Next::job;
}

// The runs decided since the last call, as jobs: those to prune, then those to train, each set cut by where their
// checkpoints continue and how far they go, and packed into ensembles.
void Pruner::queue_jobs() {
  queue(to_prune_, true);
  queue(to_queue_, false);
}

void Pruner::queue(std::vector<int64_t>& runs, bool prune) {
  std::map<std::tuple<int, int64_t, int64_t>, std::vector<int64_t>> by_step;  // (rung, epoch, batch) -> runs
  for (const int64_t run : runs) {
    const RunState& r = runs_[run];
    by_step[{r.rung, r.resume_epoch, r.resume_batch}].push_back(run);
  }
  runs.clear();
  for (auto& [step, members] : by_step) {
    const int rung = std::get<0>(step);
    const int64_t epoch = std::get<1>(step);  // the batch only keeps runs at other steps apart
    std::sort(members.begin(), members.end());
    for (auto& jobs : pack_(members)) {
      JobSpec job;
      job.runs = std::move(jobs);
      job.source = epoch > 0 ? job.runs.front() : -1;
      job.own_checkpoints = true;
      job.prune = prune;
      job.pause_after_epoch = prune ? epoch - 1 : rung < static_cast<int>(rungs_.size()) ? rungs_[rung] : 0;
      for (const int64_t run : job.runs) runs_[run].stage = Stage::queued;
      queue_.push_back(std::move(job));
    }
  }
}

}  // namespace gradfit::sweep
