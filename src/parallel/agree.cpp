#include "parallel/agree.h"

#include <cstdint>
#include <limits>
#include <string>

#include "common/error.h"

namespace gradfit::parallel {

void all_or_none(const Comm& comm, bool participate, const std::function<void()>& action) {
  std::string message;
  if (participate) {
    try {
      action();
    } catch (const std::exception& e) {
      message = message_of(e);
    }
  }
  constexpr int64_t kNone = std::numeric_limits<int64_t>::max();
  const int64_t failed = comm.allreduce_min(message.empty() ? kNone : comm.rank());
  if (failed == kNone) return;
  int64_t length = static_cast<int64_t>(message.size());
  comm.broadcast(&length, sizeof(length), static_cast<int>(failed));
  message.resize(static_cast<size_t>(length));
  comm.broadcast(message.data(), length, static_cast<int>(failed));
  throw CollectiveError(message);
}

}  // namespace gradfit::parallel
