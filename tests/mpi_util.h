#pragma once
// Helpers for the test binaries that run under mpiexec.
#include <mpi.h>
#include <torch/torch.h>

#include "parallel/comm.h"

namespace gradfit::testing {

inline const parallel::Comm& world() {
  static const parallel::Comm comm(MPI_COMM_WORLD);
  return comm;
}

// Largest |difference| between this rank's tensor (on any device) and rank 0's, over all ranks. Collective.
inline double max_difference_from_root(const torch::Tensor& t) {
  auto mine = t.to(torch::kCPU).contiguous().clone();
  auto roots = mine.clone();
  world().broadcast(roots.data_ptr(), roots.numel() * static_cast<int64_t>(roots.element_size()));
  double diff = (mine - roots).abs().max().item<double>();
  MPI_Allreduce(MPI_IN_PLACE, &diff, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return diff;
}

}  // namespace gradfit::testing
