// The memory check of a sweep's jobs before anything runs (single-rank; linked into scheduler_test).
#include <gtest/gtest.h>

#include <vector>

#include "common/error.h"
#include "io/h5.h"
#include "sweep/jobs.h"
#include "test_util.h"
#include "train/memory.h"

namespace gradfit::sweep {
namespace {

MemoryBudget budget_of(double bytes) {
  return {bytes, "this node has " + train::bytes_text(bytes)};
}

TEST(MemoryCheck, AJobThatFitsPasses) {
  const auto config = config::parse_config("data: {target: quadratic, P: [[1, 0], [0, 1]]}\n", "s.yaml");
  EXPECT_NO_THROW(check_memory(config, 1, 2, torch::kCPU, budget_of(1e9)));
  EXPECT_NO_THROW(check_memory(config, 1, 2, torch::kCPU, budget_of(0)));  // unknown memory: nothing checked
}

// 1e9 samples in 100-D on one rank: an 804 GB shard; spread over 100 ranks, 8 GB each.
TEST(MemoryCheck, ARunWhoseShardCannotFitIsRefusedWithItsParts) {
  const auto config = config::parse_config(
      "name: big\ndata: {target: gaussian_wells, dim: 100, sampling: uniform, samples: 1000000000}\n", "s.yaml");
  EXPECT_THROW_MATCHING(check_memory(config, 1, 1, torch::kCPU, budget_of(24e9)), ConfigError,
                        R"(^run big needs ~8[0-9]{2} GB of memory per rank \(data shard 804 GB, buffers [0-9.]+ GB, )"
                        R"(model [0-9.]+ kB, chunks [0-9.]+ MB, runtime 200 MB\); this node has 24 GB$)");
  EXPECT_NO_THROW(check_memory(config, 1, 100, torch::kCPU, budget_of(24e9)));
}

// Eight runs that train as one ensemble need eight models: refused together, each alone they fit.
TEST(MemoryCheck, AnEnsembleCountsEveryMember) {
  const std::string yaml =
      "ensemble_size: 8\ndata: {target: quadratic, P: [[1, 0], [0, 1]]}\n"
      "model: {widths: [4096, 4096, 4096], dtype: float64}\n"
      "sweep: {grid: {optimizer.lr: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]}}\n";
  // 33.6e6 parameters × 8 bytes × 5 copies = 1.3 GB a model.
  EXPECT_THROW_MATCHING(check_memory(config::parse_config(yaml, "s.yaml"), 1, 1, torch::kCPU, budget_of(4e9)),
                        ConfigError,
                        R"(^run lr=0\.1 \(in an ensemble of 8\) needs ~1[0-9] GB of memory per rank )"
                        R"(\(data shard .*, model 1[0-9] GB, chunks .*\); this node has 4\.0 GB$)");
  const auto alone = config::parse_config(yaml, "s.yaml", {"ensemble_size=1"});
  EXPECT_NO_THROW(check_memory(alone, 1, 1, torch::kCPU, budget_of(4e9)));
}

// A data file's rows and columns come from its layout: 64 rows of x and grad in 2-D, float32, are 1.0 kB.
TEST(MemoryCheck, AFilesShardComesFromItsLayout) {
  testing::TempDir dir;
  {
    const auto file = io::File::create(dir.file("g.h5"));
    const std::vector<double> x(64 * 2, 0.5);
    file.write("x", {64, 2}, x.data());
    file.write("grad", {64, 2}, x.data());
  }
  const auto config = config::parse_config("data: {target: file, path: g.h5}\n", dir.file("s.yaml"));
  EXPECT_THROW_MATCHING(check_memory(config, 1, 1, torch::kCPU, budget_of(1000)), ConfigError,
                        R"(^run s needs ~[0-9.]+ MB of memory per rank \(data shard 1\.0 kB, )");
}

}  // namespace
}  // namespace gradfit::sweep
