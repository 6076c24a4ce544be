#include "device/device.h"

#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

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
  EXPECT_THROW_MATCHING(select_device(Device::cuda, 0, "s.yaml: key 'device'"), ConfigError,
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

// A float32 product below the normal range (1e-30 × 1e-10 = 1e-40), made where the compiler cannot fold it.
float subnormal_product() {
  volatile float a = 1e-30F, b = 1e-10F;
  return a * b;
}

// Bits, not a comparison: with DAZ a subnormal compares equal to zero.
bool is_zero(float x) {
  uint32_t bits = 0;
  std::memcpy(&bits, &x, sizeof bits);
  return (bits & 0x7fffffffU) == 0;
}
int64_t nonzero_count(const torch::Tensor& t) {
  return t.contiguous().view(torch::kInt32).bitwise_and(0x7fffffff).count_nonzero().item<int64_t>();
}

// Each test runs in a process of its own (gtest_discover_tests), so LibTorch's threads start after the mode is set,
// as in gradfit_dist.
TEST(Denormals, FlushReachesTheThreadsOfLibTorchAndTheBlas) {
  set_threads(2);
  set_denormals(config::Denormals::flush);
  EXPECT_TRUE(is_zero(subnormal_product()));
  EXPECT_EQ(nonzero_count(torch::full({64}, 1e-30F) * 1e-10), 0);
  // Each chunk on LibTorch's threads: every product flushed, on more than one thread.
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::vector<float> products(64, 1);
  at::parallel_for(0, 64, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) products[i] = subnormal_product();
    const std::lock_guard<std::mutex> lock(mutex);
    threads.insert(std::this_thread::get_id());
  });
  EXPECT_GE(threads.size(), 2U);
  for (const float p : products) EXPECT_TRUE(is_zero(p));
  // A subnormal operand counts as zero (DAZ): 1e-40 × 1e30 is 0, not 1e-10.
  EXPECT_EQ(nonzero_count(torch::mm(torch::full({2, 2}, 1e-40F), torch::full({2, 2}, 1e30F))), 0);
}

TEST(Denormals, KeepKeepsThem) {
  set_threads(2);
  set_denormals(config::Denormals::keep);
  EXPECT_FALSE(is_zero(subnormal_product()));
  EXPECT_EQ(nonzero_count(torch::full({64}, 1e-30F) * 1e-10), 64);
  std::vector<float> products(64, 0);
  at::parallel_for(0, 64, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) products[i] = subnormal_product();
  });
  for (const float p : products) EXPECT_FALSE(is_zero(p));
  EXPECT_NEAR(torch::mm(torch::full({2, 2}, 1e-40F), torch::full({2, 2}, 1e30F)).max().item<float>(), 2e-10F, 1e-12F);
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
