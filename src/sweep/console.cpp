#include "sweep/console.h"

#include <algorithm>
#include <cmath>
#include <cstdarg>

namespace gradfit::sweep {
namespace {

std::string format(const char* pattern, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* pattern, ...) {
  char text[512];
  va_list args;
  va_start(args, pattern);
  std::vsnprintf(text, sizeof(text), pattern, args);
  va_end(args);
  return text;
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  if (seconds < 60) return format("%.0fs", seconds);
  if (seconds < 3600) return format("%.0fm%02.0fs", std::floor(seconds / 60), std::fmod(seconds, 60));
  return format("%.0fh%02.0fm", std::floor(seconds / 3600), std::fmod(seconds / 60, 60));
}

}  // namespace

ConsoleReporter::ConsoleReporter(const std::vector<config::RunSpec>& runs, std::FILE* out, bool live)
    : runs_(runs), out_(out), live_(live), seen_(runs.size(), 0), last_progress_(std::chrono::steady_clock::now()) {}

void ConsoleReporter::add_previous(const RunSummary& summary) {
  record(summary);
  if (summary.status == records::RunStatus::interrupted || seen_[summary.index]) return;  // it starts again
  ++started_;
  seen_[summary.index] = 1;
}

// Keeps the last summary of each run, in the order runs first ended.
void ConsoleReporter::record(const RunSummary& summary) {
  const bool ended = summary.status != records::RunStatus::interrupted;
  for (auto& s : results_)
    if (s.index == summary.index) {
      ended_ += (ended ? 1 : 0) - (s.status != records::RunStatus::interrupted ? 1 : 0);
      s = summary;
      return;
    }
  results_.push_back(summary);
  ended_ += ended ? 1 : 0;
}

ConsoleReporter::~ConsoleReporter() {
  if (live_shown_) std::fputs("\r\033[K", out_);
}

void ConsoleReporter::line(const std::string& text) {
  if (live_shown_) std::fputs("\r\033[K", out_);
  live_shown_ = false;
  std::fprintf(out_, "%s\n", text.c_str());
  std::fflush(out_);
}

void ConsoleReporter::started(int64_t index, int group) {
  if (seen_[index]) return;  // a later rung of sweep.prune, or a resumed run already counted
  seen_[index] = 1;
  ++started_;
  const auto& run = runs_[index];
  const int width = static_cast<int>(std::to_string(runs_.size()).size());
  line(format("[%*lld/%zu start] %s %s (group %d, %lld epochs)", width, static_cast<long long>(started_), runs_.size(),
              run.id.c_str(), run.name.c_str(), group, static_cast<long long>(run.train.epochs)));
}

void ConsoleReporter::finished(const RunSummary& s, int group) {
  record(s);
  const auto& run = runs_[s.index];
  line(format("[%lld/%zu done] %-8s %s %s  loss %.4e  rel_grad_error %.3e  %lld epochs  %s (group %d)",
              static_cast<long long>(ended_), runs_.size(), records::to_string(s.status), run.id.c_str(),
              run.name.c_str(), s.final_loss, s.final_rel_grad_error, static_cast<long long>(s.epochs_run),
              duration(s.seconds).c_str(), group));
}

void ConsoleReporter::in_flight(const std::vector<RunProgress>& runs) {
  const auto now = std::chrono::steady_clock::now();
  const double interval = live_ ? 1.0 : 30.0;
  if (runs.empty() || std::chrono::duration<double>(now - last_progress_).count() < interval) return;
  last_progress_ = now;
  std::string text = live_ ? "" : "progress:";
  for (const auto& p : runs) {
    const auto& run = runs_[p.index];
    const double eta = p.epoch > 0
                           ? p.elapsed / static_cast<double>(p.epoch) * static_cast<double>(run.train.epochs - p.epoch)
                           : std::nan("");
    text += format(" %s ep %lld/%lld loss %.3e eta %s |", run.id.substr(0, 6).c_str(), static_cast<long long>(p.epoch),
                   static_cast<long long>(run.train.epochs), p.loss, duration(eta).c_str());
  }
  text.pop_back();
  if (live_) {
    std::fprintf(out_, "\r\033[K%.*s", 200, text.c_str());
    live_shown_ = true;
    std::fflush(out_);
  } else {
    line(text);
  }
}

void ConsoleReporter::print_leaderboard() {
  std::vector<records::Standing> standings;
  for (const auto& s : results_)
    standings.push_back({s.status, s.best_val_loss, s.final_rel_grad_error, runs_[s.index].name});
  std::string measure;
  const std::vector<size_t> order = records::best_first(standings, &measure);
  // data.test_path: the test file's relative gradient error beside the training one (not used to rank)
  const bool tested = std::any_of(runs_.begin(), runs_.end(), [](const auto& r) { return !r.data.test_path.empty(); });
  line(format("%-4s %-12s %-14s %-13s %-12s %s%-12s %s", "rank", "id", "status", "best_val_loss", "rel_error",
              tested ? "test_rel_err " : "", "loss", "name"));
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& s = results_[order[i]];
    const std::string test = tested ? format("%-12.4e ", s.test_rel_grad_error) : "";
    line(format("%-4zu %-12s %-14s %-13.4e %-12.4e %s%-12.4e %s", i + 1, runs_[s.index].id.c_str(),
                records::to_string(s.status), s.best_val_loss, s.final_rel_grad_error, test.c_str(), s.final_loss,
                runs_[s.index].name.c_str()));
  }
  if (!order.empty()) line("ranked by " + measure + " (done and early_stopped runs first)");
}

}  // namespace gradfit::sweep
