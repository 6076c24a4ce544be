#pragma once
// Which of the N sample rows each rank of a communicator owns.
#include <cstdint>

namespace gradfit::parallel {

// The rows of N are cut into blocks of this many rows (the last one shorter), a number that depends on N alone:
// 256 rows (so that a pass over one block costs little more than over the same rows within a larger pass), but
// fewer where that leaves under 16 blocks (so that up to 16 ranks get rows of a small N) and more where it makes
// over 1024 (so that up to 1024 ranks get rows of any N). A shard holds whole blocks, so a sum taken block by block
// (each block's terms computed alike on any rank count) can be made independent of the rank count
// (GradientAllreduce's compensated sums).
int64_t reduction_block_rows(int64_t rows);

// The rows [begin, begin + count) of N that one rank owns. Shards are contiguous, in rank order, made of whole
// blocks (reduction_block_rows), and differ in size by at most one block; with more ranks than blocks some shards
// are empty.
struct Shard {
  int64_t begin = 0;
  int64_t count = 0;
  int64_t end() const { return begin + count; }
};
Shard shard_of(int64_t rows, int rank, int ranks);

}  // namespace gradfit::parallel
