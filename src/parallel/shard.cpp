#include "parallel/shard.h"

#include <algorithm>

namespace gradfit::parallel {

int64_t reduction_block_rows(int64_t rows) {
  constexpr int64_t kMinBlocks = 16, kMaxBlocks = 1024, kRows = 256;
  const int64_t for_min_blocks = std::max<int64_t>(1, (rows + kMinBlocks - 1) / kMinBlocks);
  return std::max(std::min(kRows, for_min_blocks), (rows + kMaxBlocks - 1) / kMaxBlocks);
}

Shard shard_of(int64_t rows, int rank, int ranks) {
  const int64_t block_rows = reduction_block_rows(rows);
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
  const int64_t base = blocks / ranks;
  const int64_t extra = blocks % ranks;
  const int64_t first_block = rank * base + std::min<int64_t>(rank, extra);
  const int64_t block_count = base + (rank < extra ? 1 : 0);
  Shard s;
  s.begin = std::min(rows, first_block * block_rows);
  s.count = std::min(rows, (first_block + block_count) * block_rows) - s.begin;
  return s;
}

}  // namespace gradfit::parallel
