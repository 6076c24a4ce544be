#include "app_compute.h"

#include "device/device.h"
#include "model/kernels.h"
#include "parallel/agree.h"

namespace gradfit {

Compute set_up_compute(const ComputeRequest& request, const parallel::Comm& world) {
  const auto node = world.node_local();
  Compute compute;
  compute.threads = request.threads > 0 ? request.threads : device::default_thread_count(node.size);
  device::set_threads(compute.threads);
  device::set_denormals(request.denormals);
  parallel::all_or_none(world, true, [&] {
    compute.device = device::select_device(request.device, node.rank, request.device_source);
    model::kernels::instruction_set();  // chooses the CPU kernels now: a bad GRADFIT_CPU_KERNELS fails here
  });
  return compute;
}

}  // namespace gradfit
