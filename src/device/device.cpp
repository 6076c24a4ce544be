#include "device/device.h"

#ifdef _OPENMP
#include <omp.h>
#endif
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

#include "common/error.h"

namespace gradfit::device {

torch::Device select_device(config::Device wanted, int node_local_rank, const std::string& source) {
  const int gpus = torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  if (wanted == config::Device::cpu || (wanted == config::Device::auto_select && gpus == 0)) return torch::kCPU;
  if (gpus == 0)
    throw ConfigError(source +
                      ": cuda requested, but LibTorch sees no CUDA device (a CPU-only LibTorch build, or no GPU on "
                      "this node)");
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(node_local_rank % gpus));
}

void set_threads(int threads) {
  torch::set_num_threads(threads);
#ifdef _OPENMP
  omp_set_num_threads(threads);
#endif
}

void set_denormals(config::Denormals mode) {
  at::globalContext().setFlushDenormal(mode == config::Denormals::flush);
}

int default_thread_count(int ranks_on_node) {
  if (const char* omp = std::getenv("OMP_NUM_THREADS")) {
    const int n = std::atoi(omp);
    if (n >= 1) return n;
  }
  const int online = static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  cpu_set_t mask;
  CPU_ZERO(&mask);
  const int allowed = sched_getaffinity(0, sizeof(mask), &mask) == 0 ? CPU_COUNT(&mask) : online;
  // A launcher that bound this rank to a subset of the cores (mpirun --bind-to, srun --cpus-per-task) has
  // already divided the node: use that subset. Otherwise share the node's cores among its ranks.
  if (allowed >= 1 && allowed < online) return allowed;
  return std::max(1, online / std::max(1, ranks_on_node));
}

int64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES), page_size = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page_size > 0 ? static_cast<int64_t>(pages) * page_size : 0;
}

}  // namespace gradfit::device
