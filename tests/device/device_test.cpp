#include "device/device.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "test_util.h"
#include "train/trainer.h"

namespace gradfit::device {
namespace {

using config::Device;

TEST(Device, CpuIsAlwaysThere) {
  EXPECT_EQ(select_device(Device::cpu, 0, "s.yaml"), torch::Device(torch::kCPU));
}

TEST(Device, CudaWithoutAGpuIsAClearError) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has a GPU";
  EXPECT_EQ(select_device(Device::auto_select, 0, "s.yaml"), torch::Device(torch::kCPU));
  EXPECT_THROW_MATCHING(select_device(Device::cuda, 0, "s.yaml"), ConfigError,
                        "^s\\.yaml: key 'device': cuda requested, but LibTorch sees no CUDA device");
}

TEST(Device, RanksOnANodeShareItsGpusRoundRobin) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (CPU-only LibTorch or no GPU)";
  const auto gpus = static_cast<int>(torch::cuda::device_count());
  for (int local_rank = 0; local_rank < 2 * gpus + 1; ++local_rank) {
    EXPECT_EQ(select_device(Device::auto_select, local_rank, "s.yaml"),
              torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(local_rank % gpus)));
  }
}

// The same float64 run on the GPU and on the CPU follows the same trajectory, up to rounding.
TEST(Device, TrainingOnTheGpuMatchesTheCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (CPU-only LibTorch or no GPU)";
  config::RunSpec run;
  run.data.P = {20.1892, -26.6218, -26.6218, 38.0375};
  run.model.widths = {10, 10};
  run.model.dtype = config::DType::float64;
  run.optimizer.lr = 0.1;
  run.train.epochs = 100;
  run.train.batch_size = 32;
  const parallel::Comm self(MPI_COMM_SELF);
  const auto cpu = train::train(run, data::load_dataset(run.data, torch::kFloat64, self, torch::kCPU), self);
  const auto gpu = train::train(run, data::load_dataset(run.data, torch::kFloat64, self, torch::kCUDA), self);
  ASSERT_EQ(cpu.history.size(), gpu.history.size());
  for (size_t e = 0; e < cpu.history.size(); ++e)
    EXPECT_NEAR(gpu.history[e].train_loss / cpu.history[e].train_loss, 1.0, 1e-9) << "epoch " << e + 1;
}

}  // namespace
}  // namespace gradfit::device
