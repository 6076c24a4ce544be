// More ranks than GPUs: two ranks (ctest: mpiexec -n 2) train one run together on the GPU, both on cuda:0 when the
// node has one, and must follow the trajectory of one rank on the CPU. Where any rank sees no GPU, every rank skips
// together, so that none is left waiting in a collective.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "config/config.h"
#include "data/dataset.h"
#include "device/device.h"
#include "mpi_util.h"
#include "parallel/comm.h"
#include "test_util.h"
#include "train/trainer.h"

namespace gradfit {
namespace {

using testing::float64_wells_run;
using testing::max_difference_from_root;
using testing::relative_difference;
using testing::world;

// Collective: true only when LibTorch sees a CUDA device on every rank.
bool every_rank_has_a_gpu() {
  int mine = torch::cuda::is_available() ? 1 : 0;
  int all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

// Every rank trains on the GPU that device selection gives it; rank 0 compares with one CPU rank. Collective.
void expect_gpu_ranks_match_one_cpu_rank(const config::RunSpec& run) {
  const int local_rank = world().node_local().rank;
  const auto gpus = static_cast<int>(torch::cuda::device_count());
  const torch::Device device = device::select_device(config::Device::cuda, local_rank, "gpu_mpi_test");
  EXPECT_TRUE(device.is_cuda());
  EXPECT_EQ(device.index(), local_rank % gpus);  // fewer GPUs than ranks: the ranks share them round-robin

  const auto shard = data::load_dataset(run.data, torch::kFloat64, world(), device);
  EXPECT_TRUE(shard.x.is_cuda());
  EXPECT_LE(shard.shard.count, shard.total_rows / world().size() + 1);
  const records::TrainResult parallel = train::train(run, shard, world());
  EXPECT_EQ(parallel.status, records::RunStatus::done);
  // Identical optimizer steps on every rank: the replicas end bit for bit equal.
  for (const auto& [name, tensor] : parallel.parameters) EXPECT_EQ(max_difference_from_root(tensor), 0.0) << name;

  if (!world().is_root()) return;
  const parallel::Comm self(MPI_COMM_SELF);
  const records::TrainResult single =
      train::train(run, data::load_dataset(run.data, torch::kFloat64, self, torch::kCPU), self);
  ASSERT_EQ(single.history.size(), static_cast<size_t>(run.train.epochs));
  ASSERT_EQ(parallel.history.size(), single.history.size());
  ASSERT_EQ(parallel.parameters.size(), single.parameters.size());
  double worst_loss = 0, worst_weight = 0;
  for (size_t e = 0; e < single.history.size(); ++e) {
    worst_loss =
        std::max({worst_loss, relative_difference(parallel.history[e].train_loss, single.history[e].train_loss),
                  relative_difference(parallel.history[e].rel_grad_error, single.history[e].rel_grad_error)});
  }
  for (size_t p = 0; p < single.parameters.size(); ++p) {
    const auto a = parallel.parameters[p].second.to(torch::kCPU);
    const auto& b = single.parameters[p].second;
    worst_weight = std::max(worst_weight, ((a - b).norm() / b.norm().clamp_min(1e-300)).item<double>());
  }
  std::printf(
      "[ ranks=%d gpus=%d batch=%lld ] GPU ranks vs one CPU rank, worst relative difference: loss %.3e, "
      "weights %.3e\n",
      world().size(), gpus, static_cast<long long>(run.train.batch_size), worst_loss, worst_weight);
  EXPECT_LT(worst_loss, 1e-9);
  EXPECT_LT(worst_weight, 1e-9);
  EXPECT_LT(single.history.back().train_loss, single.history.front().train_loss);  // it did train
}

TEST(GpuSharedByRanks, FullBatchMatchesOneCpuRankInFloat64) {
  if (!every_rank_has_a_gpu()) GTEST_SKIP() << "a rank sees no CUDA device (CPU-only LibTorch or no GPU)";
  expect_gpu_ranks_match_one_cpu_rank(float64_wells_run(/*samples=*/1001, /*batch_size=*/0));  // shards: 501, 500
}

TEST(GpuSharedByRanks, MiniBatchMatchesOneCpuRankInFloat64) {
  if (!every_rank_has_a_gpu()) GTEST_SKIP() << "a rank sees no CUDA device (CPU-only LibTorch or no GPU)";
  expect_gpu_ranks_match_one_cpu_rank(float64_wells_run(/*samples=*/1001, /*batch_size=*/128));
}

}  // namespace
}  // namespace gradfit
