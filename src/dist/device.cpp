#include "dist/device.h"

#include "common/error.h"

namespace gradfit::dist {

torch::Device select_device(config::Device wanted, int node_local_rank, const std::string& config_path) {
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (wanted == config::Device::cpu || (wanted == config::Device::auto_select && gpus == 0)) return torch::kCPU;
  if (gpus == 0)
    throw ConfigError(config_path +
                      ": key 'device': cuda requested, but LibTorch sees no CUDA device (a CPU-only LibTorch "
                      "build, or no GPU on this node)");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(node_local_rank % gpus));
}

}  // namespace gradfit::dist
