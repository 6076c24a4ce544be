#pragma once
// Which device a rank computes on.
#include <torch/torch.h>

#include <string>

#include "config/config.h"

namespace gradfit::dist {

// auto: cuda:(node_local_rank % GPUs) where LibTorch sees GPUs, else the CPU. cpu: the CPU. cuda: a GPU, or a
// ConfigError naming `config_path` when LibTorch sees none (a CPU-only build, or no GPU on the node).
torch::Device select_device(config::Device wanted, int node_local_rank, const std::string& config_path);

}  // namespace gradfit::dist
