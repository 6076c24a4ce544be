#include "parallel/watchdog.h"

#include <chrono>
#include <cstdlib>

#include "parallel/comm.h"

namespace gradfit::parallel {

StopWatchdog::StopWatchdog(std::function<bool()> stopped, double timeout_seconds, std::function<void()> give_up)
    : stopped_(std::move(stopped)), timeout_seconds_(timeout_seconds), give_up_(std::move(give_up)) {
  if (timeout_seconds_ > 0) thread_ = std::thread([this] { watch(); });
}

StopWatchdog::~StopWatchdog() {
  done_ = true;
  if (thread_.joinable()) thread_.join();
}

// Polls ten times a second: nothing to do until a stop signal; then the time since the last completed exchange.
void StopWatchdog::watch() {
  using Clock = std::chrono::steady_clock;
  uint64_t last = exchanges_completed();
  auto since = Clock::now();
  while (!done_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const uint64_t now = exchanges_completed();
    if (!stopped_() || now != last) {
      last = now;
      since = Clock::now();
      continue;
    }
    if (std::chrono::duration<double>(Clock::now() - since).count() < timeout_seconds_) continue;
    give_up_();
    std::_Exit(1);
  }
}

}  // namespace gradfit::parallel
