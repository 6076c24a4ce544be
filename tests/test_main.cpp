// GoogleTest main for gradfit tests: the library's collectives need MPI, so every test binary runs inside an MPI
// environment (a single-process world unless started by mpiexec). Under mpiexec only rank 0 prints the report;
// every rank runs every test, and the job fails if any rank fails.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "device/device.h"
#include "parallel/comm.h"

int main(int argc, char** argv) {
  gradfit::parallel::MpiEnvironment mpi(argc, argv);
  const gradfit::parallel::Comm world(MPI_COMM_WORLD);
  // As many threads as the tool itself would use: never oversubscribe when ranks share cores.
  torch::set_num_threads(gradfit::device::default_thread_count(world.node_local().size));
  ::testing::InitGoogleTest(&argc, argv);
  if (!world.is_root()) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  return RUN_ALL_TESTS();
}
