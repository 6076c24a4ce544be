#pragma once
// After a stop signal, a rank must reach its peers to checkpoint with them. When a peer has died (a node lost, a
// rank killed), the others wait in a collective that never completes, until the launcher kills them, leaving no
// outcome. The watchdog notices: once `stopped()` holds, if this rank completes no collective or receive
// (exchanges_completed) for `timeout_seconds`, it calls `give_up` (which must not call MPI) and ends the process
// with exit code 1.
#include <atomic>
#include <functional>
#include <thread>

namespace gradfit::parallel {

class StopWatchdog {
 public:
  // timeout_seconds <= 0: no watchdog.
  StopWatchdog(std::function<bool()> stopped, double timeout_seconds, std::function<void()> give_up);
  ~StopWatchdog();  // stops watching
  StopWatchdog(const StopWatchdog&) = delete;
  StopWatchdog& operator=(const StopWatchdog&) = delete;

 private:
  void watch();

  std::function<bool()> stopped_;
  double timeout_seconds_;
  std::function<void()> give_up_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace gradfit::parallel
