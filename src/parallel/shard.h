#pragma once
// Which of the N sample rows each rank of a communicator owns.
#include <cstdint>

namespace gradfit::parallel {

// The rows [begin, begin + count) of N that one rank owns. Shards are contiguous, in rank order, and differ in
// size by at most one row; with more ranks than rows some shards are empty.
struct Shard {
  int64_t begin = 0;
  int64_t count = 0;
  int64_t end() const { return begin + count; }
};
Shard shard_of(int64_t rows, int rank, int ranks);

}  // namespace gradfit::parallel
