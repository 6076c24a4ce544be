#pragma once
// How every command computes, set up in one place: intra-op threads per rank, subnormal floats, the device and the
// CPU kernels' instruction set. Training and eval call it alike.
#include <c10/core/Device.h>

#include <string>

#include "config/config.h"
#include "parallel/comm.h"

namespace gradfit {

struct ComputeRequest {
  int threads = 0;  // intra-op threads per rank; 0: device::default_thread_count(the ranks on this rank's node)
  config::Denormals denormals = config::Denormals::flush;
  config::Device device = config::Device::auto_select;
  std::string device_source;  // where `device` was asked for, for errors: "s.yaml: key 'device'" or "--device"
};

struct Compute {
  int threads = 1;  // this rank's intra-op threads
  c10::Device device = c10::kCPU;
};

// Sets `request` up on this rank: threads and the subnormal mode first (before any parallel region, so that the
// threads inherit the mode), then the device and the CPU kernels. Collective over `world`: a rank's failure (cuda
// on a node without a GPU, a bad GRADFIT_CPU_KERNELS) is every rank's CollectiveError.
Compute set_up_compute(const ComputeRequest& request, const parallel::Comm& world);

}  // namespace gradfit
