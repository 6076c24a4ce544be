#include "app_signals.h"

#include <csignal>

namespace gradfit {
namespace {

volatile std::sig_atomic_t g_stop_signal = 0;

extern "C" void on_stop_signal(int) {
  g_stop_signal = 1;
}

}  // namespace

void catch_stop_signals() {
  std::signal(SIGTERM, on_stop_signal);
  std::signal(SIGUSR1, on_stop_signal);
}

bool stop_signalled() {
  return g_stop_signal != 0;
}

}  // namespace gradfit
