#include "train/memory.h"

#include <gtest/gtest.h>

#include <cmath>
#include <regex>

#include "data/dataset.h"
#include "model/analytic.h"
#include "model/mlp.h"
#include "test_util.h"

namespace gradfit::train {
namespace {

// A run of N uniform samples on a gaussian_wells target in n dimensions.
config::RunSpec wells_run(int64_t samples, int64_t dim) {
  config::RunSpec run;
  run.data.target = config::Target::gaussian_wells;
  run.data.sampling = config::Sampling::uniform;
  run.data.samples = samples;
  run.data.dim = dim;
  return run;
}

TEST(Memory, BytesReadWithTwoSignificantDigits) {
  EXPECT_EQ(bytes_text(0), "0 B");
  EXPECT_EQ(bytes_text(512), "512 B");
  EXPECT_EQ(bytes_text(999.6), "1.0 kB");
  EXPECT_EQ(bytes_text(8.43e6), "8.4 MB");
  EXPECT_EQ(bytes_text(24e9), "24 GB");
  EXPECT_EQ(bytes_text(7.4e12), "7.4 TB");
  EXPECT_EQ(bytes_text(123.4e15), "123 PB");
}

// The data part is exactly the shard that load_dataset builds: x, grad and values of this rank's rows.
TEST(Memory, TheDataPartIsTheShardThatIsLoaded) {
  for (const auto dtype : {config::DType::float32, config::DType::float64}) {
    config::RunSpec run = wells_run(1001, 3);
    run.model.dtype = dtype;
    const data::Dataset d = data::load_dataset(run.data, model::torch_dtype(dtype), parallel::Comm(MPI_COMM_SELF));
    const auto loaded = static_cast<double>(d.x.nbytes() + d.grad_samples.nbytes() + d.values.nbytes());
    EXPECT_EQ(estimate_memory(run, {1001, 3, true}, 1, 1, torch::kCPU).data, loaded);
    // On 3 ranks the largest shard has 334 of the 1001 rows.
    EXPECT_EQ(estimate_memory(run, {1001, 3, true}, 3, 1, torch::kCPU).data, loaded * 334 / 1001);
  }
  // A file without values: x and grad only.
  EXPECT_EQ(estimate_memory(wells_run(1000, 3), {1000, 3, false}, 1, 1, torch::kCPU).data, 1000.0 * 6 * 4);
}

// The model part: per member, weights, best weights, gradients and the optimizer's state, in the model's dtype.
// data.test_path: the test file's shard as evaluated at a run's end (x, grad and values, and evaluate's copy of
// grad and its predicted values) adds to the data part, spread over the group's ranks like the training rows.
TEST(Memory, TheDataPartCountsTheTestFilesShard) {
  const config::RunSpec run = wells_run(1000, 3);  // float32
  const double without = estimate_memory(run, {1000, 3, true}, 2, 1, torch::kCPU).data;
  train::DataShape shape{1000, 3, true};
  shape.test_rows = 501;
  EXPECT_EQ(estimate_memory(run, shape, 2, 1, torch::kCPU).data - without, 251.0 * (3 * 3 + 2) * 4);
}

TEST(Memory, TheModelPartCountsEveryCopyOfTheParameters) {
  config::RunSpec run = wells_run(1000, 2);  // widths 32, 32: 2·32+32 + 32·32+32 + 32+1 = 1185 parameters
  ASSERT_EQ(model::parameter_count(run.model, 2), 1185);
  const DataShape shape{1000, 2, true, false};
  EXPECT_EQ(estimate_memory(run, shape, 1, 1, torch::kCPU).model, 1185.0 * 4 * 5);  // Adam: two moments
  EXPECT_EQ(estimate_memory(run, shape, 1, 8, torch::kCPU).model, 8 * 1185.0 * 4 * 5);
  run.optimizer.name = config::Optimizer::sgd;
  EXPECT_EQ(estimate_memory(run, shape, 1, 1, torch::kCPU).model, 1185.0 * 4 * 3);
  run.optimizer.momentum = 0.9;
  run.model.dtype = config::DType::float64;
  EXPECT_EQ(estimate_memory(run, shape, 1, 1, torch::kCPU).model, 1185.0 * 8 * 4);
}

// The chunk part: AnalyticLoss's buffers for chunk_rows rows (the default keeps them near 8 MB on a CPU), per member.
TEST(Memory, TheChunkPartIsTheDoubleBackwardsBuffers) {
  config::RunSpec run = wells_run(1000, 2);
  const DataShape shape{1000, 2, true, false};
  const double per_row = static_cast<double>(model::buffer_elements_per_row(2, run.model.widths)) * 4;
  const double automatic = estimate_memory(run, shape, 1, 1, torch::kCPU).chunks;
  EXPECT_EQ(automatic, per_row * static_cast<double>(
                                     model::default_chunk_rows(2, run.model.widths, torch::kFloat32, torch::kCPU)));
  EXPECT_LE(automatic, 8e6 * 1.05);
  EXPECT_EQ(estimate_memory(run, shape, 1, 4, torch::kCPU).chunks, 4 * automatic);
  run.train.chunk_rows = 1'000'000;  // allocated whole by the analytic engine, whatever the data
  EXPECT_EQ(estimate_memory(run, shape, 1, 1, torch::kCPU).chunks, 1e6 * per_row);
  run.train.engine = config::Engine::autograd;  // per chunk of a batch
  EXPECT_EQ(estimate_memory(run, shape, 1, 1, torch::kCPU).chunks, 1000 * per_row);
}

// With features the chunks hold the MLP's buffers for m inputs and the features' own work: for inverse distances
// of a = 9 atoms (n = 27, m = 36 pairs), 12 numbers a pair and 2n a row.
TEST(Memory, TheChunkPartCountsTheFeatures) {
  config::RunSpec run = wells_run(1000, 27);
  run.train.chunk_rows = 100;
  const DataShape shape{1000, 27, true, false};
  const double identity = estimate_memory(run, shape, 1, 1, torch::kCPU).chunks;
  EXPECT_EQ(identity, 100.0 * static_cast<double>(model::buffer_elements_per_row(27, run.model.widths)) * 4);
  run.model.features = config::FeatureKind::inverse_distances;
  const double features = estimate_memory(run, shape, 1, 1, torch::kCPU).chunks;
  EXPECT_EQ(features,
            100.0 * (static_cast<double>(model::buffer_elements_per_row(36, run.model.widths)) + 12 * 36 + 2 * 27) * 4);
  EXPECT_EQ(estimate_memory(run, shape, 1, 1, torch::kCPU).model,
            static_cast<double>(model::parameter_count(run.model, 27)) * 4 * 5);  // m = 36 inputs counted
  EXPECT_EQ(model::parameter_count(run.model, 27), 36 * 32 + 32 + 32 * 32 + 32 + 32 + 1);
}

// Mini-batches keep a permutation of all N rows on every rank, and a copy of a batch; validation a mark per row.
TEST(Memory, BuffersGrowWithTheBatchesAndTheHeldOutRows) {
  config::RunSpec run = wells_run(1'000'000, 2);
  const DataShape shape{1'000'000, 2, true, false};
  const double full = estimate_memory(run, shape, 4, 1, torch::kCPU).buffers;
  run.train.batch_size = 1000;
  const double mini = estimate_memory(run, shape, 4, 1, torch::kCPU).buffers;
  EXPECT_EQ(mini - full, 1e6 * 8 + 1000 * 5 * 4);  // the permutation and a batch
  run.train.val_fraction = 0.1;
  const double held_out = estimate_memory(run, shape, 4, 1, torch::kCPU).buffers;
  EXPECT_EQ(held_out - mini, 1e6 + 250'000 * 5 * 4);  // the marks and the validation rows
  // Gaussian wells generate a block of 4096 rows at a time, with the distances to every centre.
  run.data.wells = 1000;
  const double wells = estimate_memory(run, shape, 4, 1, torch::kCPU).buffers;
  EXPECT_EQ(wells - held_out, (3.0 * data::kGenerateRows + 1) * 996 * 2 * 8);
}

// On a GPU the model, its chunks and the batch copies are in the GPU's memory: only the host's part is counted.
TEST(Memory, OnAGpuOnlyTheHostsShareCounts) {
  config::RunSpec run = wells_run(1'000'000, 2);
  run.train.batch_size = 1000;
  const DataShape shape{1'000'000, 2, true, false};
  const MemoryEstimate cpu = estimate_memory(run, shape, 1, 8, torch::kCPU);
  const MemoryEstimate gpu = estimate_memory(run, shape, 1, 8, torch::Device(torch::kCUDA, 0));
  EXPECT_EQ(gpu.data, cpu.data);
  EXPECT_EQ(gpu.model, 0);
  EXPECT_EQ(gpu.chunks, 0);
  EXPECT_EQ(cpu.buffers - gpu.buffers, 1000 * 5 * 4);
}

// The largest sizes the configuration allows give finite estimates (no overflow), and a line naming every part.
TEST(Memory, AbsurdSizesGiveAFiniteEstimateAndOneLine) {
  config::RunSpec run = wells_run(config::kMaxSamples, config::kMaxDim);
  run.model.widths = std::vector<int64_t>(config::kMaxLayers, config::kMaxWidth);
  run.data.wells = config::kMaxWells;
  run.train.batch_size = config::kMaxSamples - 1;
  const MemoryEstimate e = estimate_memory(run, {config::kMaxSamples, config::kMaxDim, true}, 1, 64, torch::kCPU);
  EXPECT_TRUE(std::isfinite(e.total()));
  EXPECT_GT(e.data, 8e16);  // 1e10 rows of 2e6 + 1 float32
  EXPECT_TRUE(
      std::regex_match(e.text(), std::regex(R"(~1\.[0-9] EB of memory per rank \(data shard 80 PB, )"
                                            R"(buffers [0-9]+ PB, model 1\.3 EB, chunks [0-9]+ TB, runtime 200 MB\))")))
      << e.text();
}

// The frames layout: the data part grows with the atoms and frames per rank, and at least holds the shard's
// positions and gradients (float64, 48 bytes an atom); the chunks do not grow with the data; an ensemble's chunks
// hold each member's networks and one chunk's descriptor. (The doubles are sums of whole numbers: exact.)
TEST(Memory, FramesGrowWithTheAtomsNotTheChunks) {
  config::RunSpec run;
  run.data.target = config::Target::file;
  run.model.features = config::FeatureKind::atom_centered;
  run.model.numbers = {29, 47};  // one atom of each element, as for the frames layout
  run.train.batch_size = 32;
  DataShape small{1000, 6, true};
  small.atoms = 36000;
  DataShape large = small;
  large.rows *= 10;
  large.atoms *= 10;
  const auto a = estimate_memory(run, small, 2, 1, torch::kCPU), b = estimate_memory(run, large, 2, 1, torch::kCPU);
  EXPECT_GE(a.data, 18000.0 * 48);
  EXPECT_NEAR(b.data / a.data, 10.0, 0.02);  // less a rank's largest frame, counted once
  EXPECT_EQ(b.chunks, a.chunks);
  EXPECT_EQ(b.model, a.model);
  const double two = estimate_memory(run, small, 2, 2, torch::kCPU).chunks;
  const double three = estimate_memory(run, small, 2, 3, torch::kCPU).chunks;
  EXPECT_GT(two, a.chunks);
  EXPECT_EQ(three - a.chunks, 2 * (two - a.chunks));  // the networks' buffers per member, the descriptor's once
}

}  // namespace
}  // namespace gradfit::train
