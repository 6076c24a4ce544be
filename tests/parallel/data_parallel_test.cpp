// Data-parallel training over MPI_COMM_WORLD must give the trajectory of a single process. Run under mpiexec with
// several ranks (ctest: -n 3 and -n 4); rank 0 compares with its own single-process run on MPI_COMM_SELF.
#include <gtest/gtest.h>

#include <cmath>

#include "data/dataset.h"
#include "data/targets.h"
#include "io/h5.h"
#include "mpi_util.h"
#include "parallel/grad_sync.h"
#include "parallel/shard.h"
#include "test_util.h"
#include "train/trainer.h"

namespace gradfit::train {
namespace {

using testing::max_difference_from_root;
using testing::relative_difference;
using testing::world;

// Rank 0 writes an HDF5 file of N gradient samples of a 3-D target; every rank gets its path.
std::string write_shared_file(int64_t rows) {
  const std::string path = ::testing::TempDir() + "/gradfit_dp_" + std::to_string(rows) + ".h5";
  if (world().is_root()) {
    config::DataSpec spec;
    spec.target = config::Target::gaussian_wells;
    spec.dim = 3;
    spec.sampling = config::Sampling::uniform;
    spec.samples = rows;
    spec.seed = 3;
    const auto d = data::load_dataset(spec, torch::kFloat64, parallel::Comm(MPI_COMM_SELF));
    const auto file = io::File::create(path);
    file.write("x", {rows, 3}, d.x.contiguous().data_ptr<double>());
    file.write("grad", {rows, 3}, d.grad_samples.contiguous().data_ptr<double>());
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return path;
}

config::RunSpec run_on_file(const std::string& path, int64_t batch_size) {
  config::RunSpec run;
  run.data.target = config::Target::file;
  run.data.path = path;
  run.model.widths = {16, 16};
  run.model.activation = config::Activation::softplus;
  run.model.dtype = config::DType::float64;
  run.optimizer.lr = 3e-3;
  run.train.epochs = 50;
  run.train.batch_size = batch_size;
  run.train.seed = 9;
  return run;
}

void expect_rank_count_invariant(const config::RunSpec& run) {
  const auto shard = data::load_dataset(run.data, torch::kFloat64, world());
  // Each rank holds only its rows: whole blocks, at most one more than an even share.
  EXPECT_LE(shard.shard.count, shard.total_rows / world().size() + parallel::reduction_block_rows(shard.total_rows));
  const TrainResult parallel = train(run, shard, world());
  ASSERT_EQ(parallel.history.size(), static_cast<size_t>(run.train.epochs));

  // Every rank ends with the same weights, bit for bit.
  for (const auto& [name, tensor] : parallel.parameters) EXPECT_EQ(max_difference_from_root(tensor), 0.0) << name;

  if (!world().is_root()) return;
  const auto whole = data::load_dataset(run.data, torch::kFloat64, parallel::Comm(MPI_COMM_SELF));
  const TrainResult single = train(run, whole, parallel::Comm(MPI_COMM_SELF));
  double worst_loss = 0, worst_weight = 0;
  for (size_t e = 0; e < single.history.size(); ++e) {
    worst_loss =
        std::max(worst_loss, relative_difference(parallel.history[e].train_loss, single.history[e].train_loss));
    worst_loss =
        std::max(worst_loss, relative_difference(parallel.history[e].rel_grad_error, single.history[e].rel_grad_error));
    if (run.train.val_fraction > 0)
      worst_loss = std::max(worst_loss, relative_difference(parallel.history[e].val_loss, single.history[e].val_loss));
  }
  ASSERT_EQ(parallel.history.size(), single.history.size());
  for (size_t p = 0; p < single.parameters.size(); ++p) {
    const auto& a = parallel.parameters[p].second;
    const auto& b = single.parameters[p].second;
    worst_weight = std::max(worst_weight, ((a - b).norm() / b.norm().clamp_min(1e-300)).item<double>());
  }
  std::printf(
      "[ ranks=%d batch=%lld val_fraction=%g ] worst relative difference from 1 rank: loss %.3e, weights %.3e\n",
      world().size(), static_cast<long long>(run.train.batch_size), run.train.val_fraction, worst_loss, worst_weight);
  EXPECT_LT(worst_loss, 1e-10);
  EXPECT_LT(worst_weight, 1e-10);
  EXPECT_LT(single.history.back().train_loss, 0.9 * single.history.front().train_loss);  // it did train
}

TEST(DataParallel, FullBatchMatchesOneRank) {
  expect_rank_count_invariant(run_on_file(write_shared_file(1001), /*batch_size=*/0));
}

TEST(DataParallel, MiniBatchMatchesOneRank) {
  expect_rank_count_invariant(run_on_file(write_shared_file(1001), /*batch_size=*/128));
}

TEST(DataParallel, ValidationSplitMatchesOneRank) {
  auto run = run_on_file(write_shared_file(1001), /*batch_size=*/100);
  run.train.val_fraction = 0.25;
  run.train.epochs = 20;
  expect_rank_count_invariant(run);
}

// L-BFGS sums block by block, compensated: its history and weights are those of one rank to the last bit (the
// gradient norm near the minimum included, where plain sums in another grouping differ by ~1e-10).
TEST(DataParallel, LbfgsEqualsOneRankToTheBit) {
  auto run = run_on_file(write_shared_file(1001), /*batch_size=*/0);
  run.optimizer.name = config::Optimizer::lbfgs;
  run.optimizer.lr = 1;
  run.train.epochs = 30;
  const auto shard = data::load_dataset(run.data, torch::kFloat64, world());
  const TrainResult parallel = train(run, shard, world());
  if (!world().is_root()) return;
  const auto whole = data::load_dataset(run.data, torch::kFloat64, parallel::Comm(MPI_COMM_SELF));
  const TrainResult single = train(run, whole, parallel::Comm(MPI_COMM_SELF));
  ASSERT_EQ(parallel.history.size(), single.history.size());
  for (size_t e = 0; e < single.history.size(); ++e) {
    EXPECT_EQ(parallel.history[e].train_loss, single.history[e].train_loss) << "epoch " << e;
    EXPECT_EQ(parallel.history[e].grad_norm, single.history[e].grad_norm) << "epoch " << e;
  }
  for (size_t p = 0; p < single.parameters.size(); ++p)
    EXPECT_TRUE(torch::equal(parallel.parameters[p].second, single.parameters[p].second));
  EXPECT_LT(single.history.back().train_loss, 0.5 * single.history.front().train_loss);  // it did train
}

// N=2 on more ranks than rows: most shards are empty and still take part in every step.
TEST(DataParallel, TwoSamplesOnManyRanksTrain) {
  auto run = run_on_file(write_shared_file(2), 0);
  run.train.epochs = 20;
  expect_rank_count_invariant(run);
}

// An ensemble trained data-parallel over the world: each run gets, bit for bit, what it gets trained alone on the
// same ranks (mini-batches with validation, learning rates per run), and stays within rounding of one rank.
TEST(DataParallel, EnsembleRunsEqualTheRunsAloneOnTheSameRanks) {
  std::vector<config::RunSpec> runs;
  for (const double lr : {3e-3, 1e-3, 1e-2}) {
    runs.push_back(run_on_file(write_shared_file(1001), /*batch_size=*/100));
    runs.back().optimizer.lr = lr;
    runs.back().train.val_fraction = 0.25;
    runs.back().train.epochs = 20;
  }
  const auto shard = data::load_dataset(runs[0].data, torch::kFloat64, world());
  const auto together = train_ensemble(runs, shard, world());
  ASSERT_EQ(together.size(), runs.size());
  for (size_t r = 0; r < runs.size(); ++r) {
    const auto alone = train(runs[r], shard, world());
    ASSERT_EQ(together[r].history.size(), alone.history.size());
    for (size_t e = 0; e < alone.history.size(); ++e) {
      EXPECT_EQ(together[r].history[e].train_loss, alone.history[e].train_loss) << "run " << r << " epoch " << e;
      EXPECT_EQ(together[r].history[e].val_loss, alone.history[e].val_loss) << "run " << r << " epoch " << e;
    }
    for (size_t p = 0; p < alone.parameters.size(); ++p)
      EXPECT_TRUE(torch::equal(together[r].parameters[p].second, alone.parameters[p].second)) << "run " << r;
    for (const auto& [name, tensor] : together[r].parameters) EXPECT_EQ(max_difference_from_root(tensor), 0.0);
  }
}

TEST(DataParallel, BroadcastMakesEveryRankStartFromRankZerosWeights) {
  torch::manual_seed(100 + world().rank());  // a different initialisation on every rank
  auto weights = torch::randn({7, 3}, torch::kFloat64);
  std::vector<torch::Tensor> params{weights};
  EXPECT_GT(max_difference_from_root(weights), 0.0);
  parallel::broadcast_parameters(params, world());
  EXPECT_EQ(max_difference_from_root(weights), 0.0);
}

TEST(DataParallel, AllreduceSumsGradientsAndExtrasInOneBuffer) {
  auto a = torch::zeros({2, 2}, torch::kFloat32).requires_grad_(true);
  auto unused = torch::zeros({3}, torch::kFloat32).requires_grad_(true);
  (a * static_cast<float>(world().rank() + 1)).sum().backward();  // rank r contributes r + 1 everywhere
  parallel::GradientAllreduce allreduce({a, unused}, 1);
  const auto extras = allreduce.reduce({torch::full({}, 1.0f)}, world());
  const int n = world().size();
  EXPECT_TRUE(torch::equal(a.grad(), torch::full({2, 2}, static_cast<float>(n * (n + 1) / 2))));
  EXPECT_TRUE(torch::equal(unused.grad(), torch::zeros({3})));
  EXPECT_EQ(extras[0].item<float>(), static_cast<float>(n));
}

// Block k adds (1e16, 1, -1e16)[k % 3] · (j + 1) to slot j: plain float64 sums lose the ones in any order, and
// how many depends on the grouping; the compensated sum is exact (3 · (j + 1) for nine blocks) on any rank count.
torch::Tensor compensated_sum_of_blocks(int64_t first_block, int64_t blocks, const parallel::Comm& comm) {
  auto p = torch::zeros({4}, torch::kFloat64).requires_grad_(true);
  parallel::GradientAllreduce allreduce({p}, 1);
  const double terms[3] = {1e16, 1, -1e16};
  allreduce.zero();
  for (int64_t k = first_block; k < first_block + blocks; ++k) {
    allreduce.gradients().copy_(torch::arange(1, 5, torch::kFloat64) * terms[k % 3]);
    allreduce.extras().fill_(terms[k % 3]);
    allreduce.add_block();
  }
  const auto extras = allreduce.reduce_compensated(comm);
  EXPECT_TRUE(torch::equal(p.grad(), allreduce.gradients()));  // .grad is the sum
  return torch::cat({p.grad().clone(), extras.clone()});
}

TEST(DataParallel, CompensatedSumsAreExactOnAnyRankCount) {
  const int64_t blocks = 9;
  const int64_t rank = world().rank(), ranks = world().size();  // contiguous blocks per rank, in rank order
  const int64_t first = rank * blocks / ranks, end = (rank + 1) * blocks / ranks;
  const auto parallel_sum = compensated_sum_of_blocks(first, end - first, world());
  const auto exact = torch::tensor({3.0, 6.0, 9.0, 12.0, 3.0}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(parallel_sum, exact)) << parallel_sum;
  // A plain sum of the same terms in block order is off (the ones are lost), so the test can tell.
  double plain = 0;
  for (int64_t k = 0; k < blocks; ++k) plain += (k % 3 == 0 ? 1e16 : k % 3 == 1 ? 1.0 : -1e16);
  EXPECT_NE(plain, 3.0);
  if (world().is_root()) {
    const auto single = compensated_sum_of_blocks(0, blocks, parallel::Comm(MPI_COMM_SELF));
    EXPECT_TRUE(torch::equal(single, parallel_sum)) << single;
  }
}

}  // namespace
}  // namespace gradfit::train

// Texts of different lengths, the empty one included, arrive on the root in rank order; elsewhere nothing.
TEST(Comm, GatherTextsCollectsEveryRanksTextInRankOrder) {
  const auto& comm = gradfit::testing::world();
  const std::string mine = comm.rank() == 1 ? "" : std::string(static_cast<size_t>(comm.rank() + 1), 'a' + comm.rank());
  const auto texts = comm.gather_texts(mine);
  if (!comm.is_root()) {
    EXPECT_TRUE(texts.empty());
    return;
  }
  ASSERT_EQ(static_cast<int>(texts.size()), comm.size());
  for (int r = 0; r < comm.size(); ++r)
    EXPECT_EQ(texts[r], r == 1 ? "" : std::string(static_cast<size_t>(r + 1), 'a' + r)) << "rank " << r;
}
