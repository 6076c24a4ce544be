#include "parallel/shard.h"

#include <algorithm>

namespace gradfit::parallel {

Shard shard_of(int64_t rows, int rank, int ranks) {
  const int64_t base = rows / ranks;
  const int64_t extra = rows % ranks;
  Shard s;
  s.begin = rank * base + std::min<int64_t>(rank, extra);
  s.count = base + (rank < extra ? 1 : 0);
  return s;
}

}  // namespace gradfit::parallel
