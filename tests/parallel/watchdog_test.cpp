#include "parallel/watchdog.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include "parallel/comm.h"

namespace gradfit::parallel {
namespace {

using namespace std::chrono_literals;

void say_given_up() {
  std::fprintf(stderr, "given up\n");
}

// After a stop, no exchange completes (a peer is gone): the watchdog gives up and ends the process with code 1.
TEST(StopWatchdogDeathTest, GivesUpWhenNoExchangeCompletesAfterAStop) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        const StopWatchdog watchdog([] { return true; }, 0.3, say_given_up);
        std::this_thread::sleep_for(10s);
      },
      ::testing::ExitedWithCode(1), "given up");
}

// Exchanges that keep completing after the stop (checkpoints being agreed), or no stop at all, keep it quiet for
// well past its timeout.
TEST(StopWatchdog, WaitsWhileExchangesCompleteOrNoStopCame) {
  bool gave_up = false;  // the process would have ended anyway
  {
    const StopWatchdog stopped([] { return true; }, 0.3, [&gave_up] { gave_up = true; });
    const Comm world(MPI_COMM_WORLD);
    for (int i = 0; i < 20; ++i) {  // 1 s of exchanges, 50 ms apart
      std::this_thread::sleep_for(50ms);
      world.allreduce_min(i);
    }
  }
  {
    const StopWatchdog calm([] { return false; }, 0.2, [&gave_up] { gave_up = true; });
    std::this_thread::sleep_for(600ms);
  }
  EXPECT_FALSE(gave_up);
}

TEST(StopWatchdog, ZeroTimeoutMeansNoWatchdog) {
  const StopWatchdog none([] { return true; }, 0, [] { std::_Exit(3); });
  std::this_thread::sleep_for(300ms);
  SUCCEED();
}

}  // namespace
}  // namespace gradfit::parallel
